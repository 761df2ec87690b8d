//! The example bot as one process of a cluster test: `cluster-node --config F --role R`
//! (the `bot` binary's own command line, built here so the tests of this crate can run it).

fn main() -> std::process::ExitCode {
    connector_examples::cli::main(std::env::args().skip(1))
}
