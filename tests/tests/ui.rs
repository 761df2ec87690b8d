//! Compile-time behaviour of `#[connector]`, `#[register_event]` and `#[derive(Event)]`:
//! `ui/pass/*.rs` must compile; `ui/fail/*.rs` must fail with exactly the error in the
//! `.stderr` file next to it. Regenerate snapshots with
//! `TRYBUILD=overwrite cargo test -p connector-tests --test ui` and read every diff: each
//! error must point at the user's own token.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
