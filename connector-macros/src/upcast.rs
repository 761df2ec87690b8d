//! The step from a registered event to the handler's argument type, and its compile error.
//!
//! A handler may take a parent of the event it is registered for (`&File` for `Image`), so
//! whether `#[register_event(Typing)] async fn f(&self, m: &Message)` is wrong is for the type
//! checker to say. Left to core's generic `Is<A, I>` bound, rustc names the failed step of
//! the parent walk (`Is<Message, There<There<_>>>`), prints full paths and points into
//! core. Instead, each registration whose event is spelt differently from the argument gets a
//! local trait carrying a message built from the user's tokens, implemented (behind
//! `do_not_recommend`, so the inner `Is` obligation is not what rustc reports) for every
//! `E: Is<A, I>`, and a helper whose generic `Self` type makes that trait the obligation
//! rustc reports: one error at the argument type, in the user's spelling, without rustc's
//! "the trait … is not implemented for …" line (left out when `Self` is a type parameter).

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident};

use crate::valid::{Entry, type_name};

/// The local trait, its impl and the helper for entry `index`; nothing when the argument
/// type is spelt as the event (then the event is passed on as it is).
pub(crate) fn helper(index: usize, entry: &Entry, event: &Ident) -> TokenStream {
    let Some((_, arg)) = entry.method.arg else {
        return TokenStream::new();
    };
    let ev_name = type_name(entry.event);
    let arg_name = type_name(arg);
    if ev_name == arg_name {
        return TokenStream::new();
    }
    let handler = entry.method.ident;
    let binding = argument_name(entry);
    let message = escape(&format!("`{ev_name}` is not a `{arg_name}` event"));
    let events = entry
        .method
        .registrations
        .iter()
        .map(|r| r.events.len())
        .sum::<usize>();
    // on_unimplemented has no `help`: the fix goes in the label, at the argument type.
    let label = escape(&if events > 1 {
        format!(
            "`{handler}` takes `&{arg_name}`: register `{ev_name}` on a handler of its own, taking `{binding}: &{ev_name}`"
        )
    } else {
        format!("`{handler}` is registered for `{ev_name}`: write `{binding}: &{ev_name}`")
    });
    let note = if events > 1 {
        "a handler takes each of its events or a parent of them all (`&File` for `Image` and `Video`)"
    } else {
        "a handler takes its event or one of the event's parents (`&Message` for `Reply`, `&File` for `Image`)"
    };
    let check = trait_name(index, entry);
    let upcast = helper_name(index, entry);
    // The error is reported at `Self` of the failed obligation: the argument type's tokens.
    let this = Ident::new("__Self", arg.span());
    let call = quote_spanned! {arg.span()=>
        <#this as #check<#event, _>>::__upcast(event)
    };
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        #[allow(non_camel_case_types)]
        trait #check<E, I> {
            fn __upcast(event: &E) -> &#arg;
        }
        #[diagnostic::do_not_recommend]
        impl<T, E: _cc::__private::Is<#arg, I>, I> #check<E, I> for T {
            fn __upcast(event: &E) -> &#arg {
                _cc::__private::Is::upcast(event)
            }
        }
        #[allow(non_snake_case)]
        fn #upcast<#this>(event: &#event) -> &#arg {
            #call
        }
    }
}

/// `expr` (a `&E` for entry `index`) as the handler's argument.
pub(crate) fn call(index: usize, entry: &Entry, expr: TokenStream) -> TokenStream {
    match entry.method.arg {
        Some((_, arg)) if type_name(entry.event) != type_name(arg) => {
            let upcast = helper_name(index, entry);
            quote!(#upcast::<()>(#expr))
        }
        _ => expr,
    }
}

fn trait_name(index: usize, entry: &Entry) -> Ident {
    format_ident!("__connector_is_{}_{}", entry.method.ident, index)
}

fn helper_name(index: usize, entry: &Entry) -> Ident {
    format_ident!("__connector_upcast_{}_{}", entry.method.ident, index)
}

/// The handler's name for its event argument, as written (`m` in `m: &Message`).
fn argument_name(entry: &Entry) -> String {
    entry
        .method
        .original
        .sig
        .inputs
        .iter()
        .find_map(|a| match a {
            FnArg::Typed(pt) => Some(pt.pat.to_token_stream().to_string()),
            FnArg::Receiver(_) => None,
        })
        .unwrap_or_else(|| "event".to_owned())
}

/// `text` as a `#[diagnostic::on_unimplemented]` format string: braces doubled.
fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}
