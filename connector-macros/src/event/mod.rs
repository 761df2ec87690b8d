//! `#[derive(Event)]`, in the phases `#[connector]` uses: parse the `#[event(...)]`
//! arguments ([`attr`]), build the model ([`ast`]), check it and pick the metadata or parent
//! field ([`valid`]), generate the code ([`expand`]).
//!
//! Every error is collected and reported at once, and the `Event` impl is generated anyway,
//! from what the user evidently meant or with stand-in bodies: one mistake gives one error,
//! and code that sends, matches on or registers the type does not fail as well.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use crate::ctxt::Ctxt;
use crate::expand::{debug_print, finish};

/// `#[derive(Event)]` on `input`.
pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(err) => return err.into_compile_error(),
    };
    let cx = Ctxt::new();
    let model = ast::EventInput::from_syn(&cx, &input);
    let shape = valid::check(&cx, &model);
    let out = finish(cx, expand::expand(&model, &shape));
    debug_print("derive(Event)", &out);
    out
}
