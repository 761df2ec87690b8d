use connector_core::prelude::*;

#[connector(name = "tuple")]
struct Tuple(u32);

#[connector(name = "generic")]
struct Generic<T> {
    inner: T,
}

#[connector]
enum NotAStruct {}

#[connector]
impl std::fmt::Debug for Tuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tuple")
    }
}

fn main() {}
