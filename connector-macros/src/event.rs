//! `#[derive(Event)]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attr;
use crate::ctxt::{Ctxt, with_help};
use crate::expand::{default_crate, finish};

/// A field the derive uses: the metadata or the parent event.
struct Special<'a> {
    ident: &'a Ident,
    ty: &'a Type,
    marker: Span,
}

pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(err) => return err.into_compile_error(),
    };
    let cx = Ctxt::new();
    let args = attr::event_container_args(&cx, &input.attrs);
    let ident = &input.ident;
    let krate = default_crate(args.krate.as_ref().map(|a| &a.value));

    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &input.generics,
            with_help(
                "an event type cannot be generic",
                "every event has one `EventKind`; make a concrete type per event",
            ),
        );
    }

    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => Some(&named.named),
            Fields::Unit => {
                cx.error_spanned_by(
                    ident,
                    with_help(
                        "`#[derive(Event)]` needs a struct with named fields",
                        format!("write `struct {ident} {{ meta: EventMeta }}`"),
                    ),
                );
                None
            }
            Fields::Unnamed(f) => {
                cx.error_spanned_by(
                    f,
                    with_help(
                        "`#[derive(Event)]` needs a struct with named fields, not a tuple struct",
                        format!("write `struct {ident} {{ meta: EventMeta, … }}`"),
                    ),
                );
                None
            }
        },
        Data::Enum(e) => {
            cx.error_spanned_by(
                e.enum_token,
                with_help(
                    "`#[derive(Event)]` works on structs, not enums",
                    "make one struct per event; a child event names its parent with `#[event(parent)]`",
                ),
            );
            None
        }
        Data::Union(u) => {
            cx.error_spanned_by(
                u.union_token,
                "`#[derive(Event)]` works on structs, not unions",
            );
            None
        }
    };

    let mut metas: Vec<Special> = Vec::new();
    let mut parents: Vec<Special> = Vec::new();
    let mut implicit_meta: Option<Special> = None;
    for field in fields.into_iter().flatten() {
        let f = attr::event_field_args(&cx, &field.attrs);
        let Some(fident) = field.ident.as_ref() else {
            continue;
        };
        if let Some(marker) = f.meta {
            metas.push(Special {
                ident: fident,
                ty: &field.ty,
                marker,
            });
        }
        if let Some(marker) = f.parent {
            parents.push(Special {
                ident: fident,
                ty: &field.ty,
                marker,
            });
        }
        if f.meta.is_none() && f.parent.is_none() && fident == "meta" {
            implicit_meta = Some(Special {
                ident: fident,
                ty: &field.ty,
                marker: fident.span(),
            });
        }
    }
    for extra in metas.iter().skip(1) {
        cx.error_at(
            extra.marker,
            with_help(
                "more than one field is marked `#[event(meta)]`",
                "an event has one `EventMeta` field",
            ),
        );
    }
    for extra in parents.iter().skip(1) {
        cx.error_at(
            extra.marker,
            with_help(
                "more than one field is marked `#[event(parent)]`",
                "an event has at most one parent event",
            ),
        );
    }
    let meta = metas.into_iter().next().or(implicit_meta);
    let parent = parents.into_iter().next();
    if fields.is_some() {
        match (&meta, &parent) {
            (Some(m), Some(p)) => cx.error_at(
                p.marker,
                with_help(
                    format!(
                        "`{ident}` has both an event metadata field (`{}`) and a parent event field (`{}`)",
                        m.ident, p.ident
                    ),
                    "a root event holds `meta: EventMeta`; a child event holds only its parent (which holds the metadata): remove one",
                ),
            ),
            (None, None) => cx.error_spanned_by(
                ident,
                with_help(
                    format!("`{ident}` has no event metadata field and no parent event field"),
                    "add `meta: EventMeta` for a root event, or mark the parent event field `#[event(parent)]` for a child event (`#[event(parent)] message: Message`)",
                ),
            ),
            _ => {}
        }
    }

    if cx.has_errors() {
        return finish(cx, TokenStream::new());
    }
    let name = match &args.name {
        Some(a) => a.value.to_token_stream(),
        None => {
            let s = ident.to_string();
            quote!(#s)
        }
    };

    let expanded = match (meta, parent) {
        (Some(m), None) => {
            let field = m.ident;
            let get = quote_spanned!(m.ty.span()=> &self.#field);
            let get_mut = quote_spanned!(m.ty.span()=> &mut self.#field);
            quote! {
                #[automatically_derived]
                impl _cc::__private::Event for #ident {
                    const KIND: &'static _cc::__private::EventKind = &_cc::__private::EventKind::__new(
                        #name,
                        _cc::__private::None,
                        _cc::__private::TypeId::of::<#ident>,
                    );
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
                }
            }
        }
        (None, Some(p)) => {
            let field = p.ident;
            let ty = p.ty;
            // Every use of the parent type goes through one `event_ops::<P>()`, spanned at
            // the user's `P`: a parent that is no event is reported once, there.
            let ops = quote_spanned!(ty.span()=> _cc::__private::event_ops::<#ty>());
            quote! {
                #[automatically_derived]
                impl _cc::__private::Event for #ident {
                    const KIND: &'static _cc::__private::EventKind = &_cc::__private::EventKind::__new(
                        #name,
                        _cc::__private::Some(#ops.kind),
                        _cc::__private::TypeId::of::<#ident>,
                    );
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
                }

                #[automatically_derived]
                impl _cc::__private::Deref for #ident {
                    type Target = #ty;
                    fn deref(&self) -> &#ty {
                        &self.#field
                    }
                }

                #[automatically_derived]
                impl _cc::__private::DerefMut for #ident {
                    fn deref_mut(&mut self) -> &mut #ty {
                        &mut self.#field
                    }
                }
            }
        }
        // Both or neither: reported above.
        _ => TokenStream::new(),
    };
    finish(
        cx,
        quote! {
            #[doc(hidden)]
            const _: () = {
                use #krate as _cc;
                #expanded
            };
        },
    )
}
