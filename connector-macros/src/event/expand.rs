//! Code generation for `#[derive(Event)]`: the `Event` impl (a stand-in when the input has
//! an error, so that uses of the type do not fail as well), the type's entry in the wire
//! registry and, for a child event, `Deref` and `DerefMut` to the parent.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;

use super::ast::EventInput;
use super::valid::{Shape, Slot};
use crate::expand::crate_path;

/// The whole expansion. After an error in the input, the parts the error leaves unclear are
/// stand-ins that type-check and never run (the crate does not compile).
pub(crate) fn expand(input: &EventInput, shape: &Shape) -> TokenStream {
    let krate = crate_path(input.args.krate.as_ref().map(|a| &a.value));
    let event = event_impl(input, shape);
    let deref = match shape {
        Shape::Child(parent) => deref_impls(input, *parent),
        Shape::Root(_) | Shape::Unknown => TokenStream::new(),
    };
    quote! {
        #[doc(hidden)]
        const _: () = {
            use #krate as _cc;
            #event
            #deref
        };
    }
}

/// The parent's `KIND` and the items of the `Event` impl besides `KIND`.
struct EventBody {
    parent_kind: TokenStream,
    items: TokenStream,
}

fn event_impl(input: &EventInput, shape: &Shape) -> TokenStream {
    let ident = input.ident;
    let name = input.name();
    let EventBody { parent_kind, items } = match shape {
        Shape::Root(meta) => root(*meta),
        // A generic child is an error; `event_ops::<Parent<T>>()` would add a second one.
        Shape::Child(parent) if !input.is_generic() => child(*parent),
        Shape::Child(_) | Shape::Unknown => stub(),
    };
    let (impl_generics, ty_generics, _) = input.generics.split_for_impl();
    let where_clause = event_where(input);
    // The one place that needs `Serialize` and `Deserialize`, spanned at the struct's name: a
    // type without them gets one error for each trait it lacks, there.
    let codec = quote_spanned!(ident.span()=> _cc::__private::Codec::of::<Self>());
    // The wire registry takes concrete types only (a generic event is already an error).
    let register = if input.is_generic() {
        TokenStream::new()
    } else {
        quote! {
            _cc::__private::inventory::submit! {
                _cc::__private::WireKind::__new(
                    <#ident as _cc::__private::Event>::KIND,
                    _cc::__private::module_path!(),
                )
            }
        }
    };
    quote! {
        #[automatically_derived]
        impl #impl_generics _cc::__private::Event for #ident #ty_generics #where_clause {
            const KIND: &'static _cc::__private::EventKind =
                &_cc::__private::EventKind::__new::<Self>(#name, #parent_kind, #codec);
            #items
        }
        #register
    }
}

/// A root event reads its metadata from `meta`; the accessors are spanned at the field's
/// type, so a field that is no `EventMeta` is reported there.
fn root(meta: Slot) -> EventBody {
    let field = meta.ident;
    let get = quote_spanned!(meta.ty.span()=> &self.#field);
    let get_mut = quote_spanned!(meta.ty.span()=> &mut self.#field);
    EventBody {
        parent_kind: quote!(_cc::__private::None),
        items: quote! {
            type Parent = ();
            fn meta(&self) -> &_cc::__private::EventMeta {
                #get
            }
            fn meta_mut(&mut self) -> &mut _cc::__private::EventMeta {
                #get_mut
            }
            fn parent(&self) -> &() {
                &()
            }
            fn __parent_dyn(&self) -> _cc::__private::Option<&dyn _cc::__private::DynEvent> {
                _cc::__private::None
            }
        },
    }
}

/// A child event reads everything through its parent. Every use of the parent type goes
/// through one `event_ops::<P>()`, spanned at the user's `P`: a parent that is no event is
/// reported once, there.
fn child(parent: Slot) -> EventBody {
    let field = parent.ident;
    let ty = parent.ty;
    let ops = quote_spanned!(ty.span()=> _cc::__private::event_ops::<#ty>());
    EventBody {
        parent_kind: quote!(_cc::__private::Some(#ops.kind)),
        items: quote! {
            type Parent = #ty;
            fn meta(&self) -> &_cc::__private::EventMeta {
                (#ops.meta)(&self.#field)
            }
            fn meta_mut(&mut self) -> &mut _cc::__private::EventMeta {
                (#ops.meta_mut)(&mut self.#field)
            }
            fn parent(&self) -> &#ty {
                &self.#field
            }
            fn __parent_dyn(&self) -> _cc::__private::Option<&dyn _cc::__private::DynEvent> {
                _cc::__private::Some((#ops.as_dyn)(&self.#field))
            }
        },
    }
}

/// Stand-ins next to an error that leaves no field to read: a root event whose accessors
/// never run (the crate does not compile).
fn stub() -> EventBody {
    EventBody {
        parent_kind: quote!(_cc::__private::None),
        items: quote! {
            type Parent = ();
            fn meta(&self) -> &_cc::__private::EventMeta {
                _cc::__private::stub()
            }
            fn meta_mut(&mut self) -> &mut _cc::__private::EventMeta {
                _cc::__private::stub()
            }
            fn parent(&self) -> &() {
                &()
            }
            fn __parent_dyn(&self) -> _cc::__private::Option<&dyn _cc::__private::DynEvent> {
                _cc::__private::None
            }
        },
    }
}

/// The `Event` impl's where clause. A generic type is already an error; bounding `Self` by
/// `Event`'s supertraits keeps the stand-in impl from adding errors about them.
fn event_where(input: &EventInput) -> TokenStream {
    let mut predicates: Vec<TokenStream> = input
        .generics
        .where_clause
        .iter()
        .flat_map(|w| w.predicates.iter().map(ToTokens::to_token_stream))
        .collect();
    if input.is_generic() {
        predicates.push(quote! {
            Self: 'static
                + _cc::__private::Clone
                + _cc::__private::Debug
                + _cc::__private::Send
                + _cc::__private::Sync
                + _cc::__private::WireSerialize
                + _cc::__private::WireDeserialize
        });
    }
    if predicates.is_empty() {
        TokenStream::new()
    } else {
        quote!(where #(#predicates),*)
    }
}

/// A child event dereferences to its parent (`blocks.text`).
fn deref_impls(input: &EventInput, parent: Slot) -> TokenStream {
    let ident = input.ident;
    let field = parent.ident;
    let ty = parent.ty;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics _cc::__private::Deref for #ident #ty_generics #where_clause {
            type Target = #ty;
            fn deref(&self) -> &#ty {
                &self.#field
            }
        }

        #[automatically_derived]
        impl #impl_generics _cc::__private::DerefMut for #ident #ty_generics #where_clause {
            fn deref_mut(&mut self) -> &mut #ty {
                &mut self.#field
            }
        }
    }
}
