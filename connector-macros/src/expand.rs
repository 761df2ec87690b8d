//! Code generation for `#[connector]` (on the struct and on the impl block) and the stand-alone
//! `#[register_event]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Fields, Ident, ImplItem, Item, ItemImpl, ItemStruct, Path};

use crate::ast::{ConnectorImpl, Method};
use crate::attr;
use crate::ctxt::{Ctxt, with_help};
use crate::upcast;
use crate::valid::{self, Entry};

/// `#[connector(...)]` on anything.
pub(crate) fn connector(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(err) => {
            let err = err.into_compile_error();
            return quote!(#input #err);
        }
    };
    let out = match item {
        Item::Struct(s) => connector_struct(args, s),
        Item::Impl(i) => connector_impl(args, i),
        other => {
            let span = match &other {
                Item::Enum(e) => e.enum_token.span,
                Item::Fn(f) => f.sig.fn_token.span,
                Item::Trait(t) => t.trait_token.span,
                Item::Union(u) => u.union_token.span,
                Item::Mod(m) => m.mod_token.span,
                _ => Span::call_site(),
            };
            let err = syn::Error::new(
                span,
                with_help(
                    "`#[connector]` goes on a struct or on its inherent impl block",
                    "write `#[connector(name = \"…\")] struct MyConnector { … }` and `#[connector] impl MyConnector { … }`",
                ),
            )
            .into_compile_error();
            quote!(#other #err)
        }
    };
    debug_print("connector", &out);
    out
}

/// `#[register_event]` outside a `#[connector]` impl: the item unchanged, plus an error.
pub(crate) fn register_event(args: TokenStream, input: TokenStream) -> TokenStream {
    if args.to_string() == "__connector_checked" {
        // Left behind by `#[connector]`, which already read the real arguments.
        return input;
    }
    let err = syn::Error::new(
        Span::call_site(),
        with_help(
            "`#[register_event]` only works on a method inside a `#[connector]` impl block",
            "put `#[connector]` on the impl block: `#[connector] impl MyConnector { #[register_event(Message)] async fn send_message(&self, event: &Message) -> Result<()> { … } }`",
        ),
    )
    .into_compile_error();
    quote!(#input #err)
}

/// Where `connector_core` is: the `crate = "…"` argument, or `::connector_core`.
pub(crate) fn crate_path(krate: Option<&Path>) -> TokenStream {
    match krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::connector_core),
    }
}

fn connector_struct(args: TokenStream, item: ItemStruct) -> TokenStream {
    let cx = Ctxt::new();
    let args = attr::connector_args(&cx, args);
    let krate = crate_path(args.krate.as_ref().map(|a| &a.value));
    let generic = !item.generics.params.is_empty() || item.generics.where_clause.is_some();
    if generic {
        cx.error_spanned_by(
            &item.generics,
            with_help(
                "a connector struct cannot be generic",
                "connectors are concrete types: the runtime builds them by type from the configuration",
            ),
        );
    }
    if let Fields::Unnamed(f) = &item.fields {
        cx.error_spanned_by(
            f,
            with_help(
                "`#[connector]` needs a struct with named fields (or a unit struct)",
                format!("write `struct {} {{ field: Type, … }}`", item.ident),
            ),
        );
    }
    if generic {
        return finish(cx, item.into_token_stream());
    }

    let ident = &item.ident;
    let type_name = match &args.name {
        Some(a) => a.value.value(),
        None => snake_case(&ident.to_string()),
    };
    let config = match &args.config {
        Some(a) => a.value.to_token_stream(),
        None => quote!(#krate::__private::NoConfig),
    };
    let state_ty = quote!(#krate::__private::ConnectorState<#config>);

    let attrs = &item.attrs;
    let vis = &item.vis;
    let has_docs = attrs.iter().any(|a| a.path().is_ident("doc"));
    let separator = has_docs.then(|| quote!(#[doc = ""]));
    let doc = format!("Configured under `connectors: {{ {type_name}: … }}`.");

    let (definition, state, construct) = match &item.fields {
        Fields::Named(named) => {
            let fields = &named.named;
            let comma = (!fields.empty_or_trailing()).then(|| quote!(,));
            let defaults = fields.iter().map(|f| {
                let name = &f.ident;
                let default = quote_spanned!(f.ty.span()=> _cc::__private::Default::default());
                quote!(#name: #default,)
            });
            (
                quote! {
                    #vis struct #ident {
                        #fields #comma
                        #[doc(hidden)]
                        __connector: #state_ty,
                    }
                },
                quote!(self.__connector),
                quote! {
                    Self {
                        __connector: _cc::__private::connector_state::<Self>(section)?,
                        #(#defaults)*
                    }
                },
            )
        }
        Fields::Unit => (
            quote! {
                #vis struct #ident {
                    #[doc(hidden)]
                    __connector: #state_ty,
                }
            },
            quote!(self.__connector),
            quote! {
                Self { __connector: _cc::__private::connector_state::<Self>(section)? }
            },
        ),
        Fields::Unnamed(unnamed) => {
            // Already an error; still expand so that uses of the struct do not cascade.
            let fields = &unnamed.unnamed;
            let comma = (!fields.empty_or_trailing()).then(|| quote!(,));
            let index = syn::Index::from(fields.len());
            let defaults = fields
                .iter()
                .map(|f| quote_spanned!(f.ty.span()=> _cc::__private::Default::default(),));
            (
                quote! { #vis struct #ident ( #fields #comma #[doc(hidden)] #state_ty ); },
                quote!(self.#index),
                quote! {
                    Self(#(#defaults)* _cc::__private::connector_state::<Self>(section)?)
                },
            )
        }
    };

    let expanded = quote! {
        #(#attrs)*
        #separator
        #[doc = #doc]
        #definition

        #[doc(hidden)]
        const _: () = {
            use #krate as _cc;

            #[automatically_derived]
            impl _cc::__private::ConnectorInfo for #ident {
                const TYPE: &'static str = #type_name;
                type Config = #config;

                fn from_section(
                    section: &_cc::__private::ConnectorSection,
                ) -> _cc::__private::Result<Self, _cc::__private::ConfigError> {
                    _cc::__private::Ok(#construct)
                }
                fn __state(&self) -> &_cc::__private::ConnectorState<Self::Config> {
                    &#state
                }
            }
        };
    };
    finish(cx, expanded)
}

fn connector_impl(args: TokenStream, item: ItemImpl) -> TokenStream {
    let cx = Ctxt::new();
    let args = attr::connector_args(&cx, args);
    for (key, arg) in [
        ("name", args.name.as_ref().map(|a| a.key)),
        ("config", args.config.as_ref().map(|a| a.key)),
    ] {
        if let Some(span) = arg {
            cx.error_at(
                span,
                with_help(
                    format!("`{key}` goes on the connector struct, not on the impl block"),
                    "`name` and `config` go on the struct: `#[connector(name = \"…\", config = MyConfig)] struct MyConnector { … }`; the impl block only takes `crate = \"…\"`",
                ),
            );
        }
    }
    let krate = crate_path(args.krate.as_ref().map(|a| &a.value));
    let model = ConnectorImpl::from_syn(&cx, &item);
    let entries = valid::check_impl(&cx, &model);

    // Each `#[register_event(...)]` becomes `#[register_event(__connector_checked)]`, which
    // expands to nothing: the user's import of `register_event` counts as used, and the
    // attribute is not read twice.
    let mut stripped = item.clone();
    for it in &mut stripped.items {
        if let ImplItem::Fn(f) = it {
            for a in f.attrs.iter_mut().filter(|a| attr::is_register_event(a)) {
                let path = a.path().clone();
                a.meta = syn::parse_quote!(#path(__connector_checked));
            }
        }
    }
    let generated = if item.trait_.is_some()
        || !item.generics.params.is_empty()
        || item.generics.where_clause.is_some()
    {
        TokenStream::new()
    } else {
        generate_impl(&model, &entries, &krate)
    };
    finish(
        cx,
        quote! {
            #stripped
            #generated
        },
    )
}

fn shim_name(method: &Method) -> Ident {
    format_ident!("__connector_send_{}", method.ident)
}

fn generate_impl(model: &ConnectorImpl, entries: &[Entry], krate: &TokenStream) -> TokenStream {
    let self_ty = model.self_ty;
    let result_ty = quote! {
        _cc::__private::Result<(), _cc::__private::SendError>
    };

    let connect = lifecycle(model, "connect", quote!(), quote!());
    let listen = lifecycle(
        model,
        "listen",
        quote!(, bot: &_cc::__private::Bot),
        quote!(, bot),
    );
    let disconnect = lifecycle(model, "disconnect", quote!(), quote!());

    // Each registered event is named once, by an alias spanned at the user's path: a path
    // that does not resolve (`Mesage`) is one error, and a type that is no event is one
    // error at the check below, because every other use goes through the alias.
    let aliases: Vec<Ident> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| event_alias(i, e))
        .collect();
    let checks = entries.iter().zip(&aliases).map(|(e, alias)| {
        let ev = e.event;
        quote_spanned! {ev.span()=>
            #[allow(non_camel_case_types)]
            type #alias = #ev;
            const _: _cc::__private::EventOps<#alias> = _cc::__private::event_ops::<#alias>();
        }
    });
    let upcasts = entries
        .iter()
        .zip(&aliases)
        .enumerate()
        .filter(|(_, (e, _))| e.method.callable)
        .map(|(i, (e, alias))| upcast::helper(i, e, alias));

    // One boxing shim per usable handler: the `Send` check happens once, at the handler.
    let shims = model.handlers().filter(|m| m.callable).filter_map(|m| {
        let (_, arg) = m.arg?;
        let shim = shim_name(m);
        // The call is reported at the return type ("must return `Result<()>` or `()`").
        let user = Ident::new(&m.ident.to_string(), m.output_span());
        let call = quote_spanned!(m.output_span()=> <#self_ty>::#user(this, event).await);
        let result = quote_spanned! {m.output_span()=>
            _cc::__private::send_result(#call, _cc::__private::ConnectorInfo::name(this), kind)
        };
        let boxed = quote_spanned! {m.ident.span()=>
            _cc::__private::Box::pin(async move { #result })
        };
        Some(quote! {
            #[allow(non_snake_case)]
            fn #shim<'a>(
                this: &'a #self_ty,
                event: &'a #arg,
                kind: &'static str,
            ) -> _cc::__private::BoxFuture<'a, #result_ty> {
                #boxed
            }
        })
    });

    let usable = |e: &Entry| e.method.callable && e.method.arg.is_some();
    let supported = aliases.iter().map(|ev| ops(ev, quote!(kind)));

    let supports_impls = entries.iter().zip(&aliases).enumerate().map(|(i, (e, ev))| {
        let body = match (e.method.callable, e.method.arg) {
            (true, Some(_)) => {
                let shim = shim_name(e.method);
                let upcast = upcast::call(i, e, quote!(event));
                let kind = ops(ev, quote!(kind));
                quote! {
                    #shim(self, #upcast, #kind.name())
                }
            }
            // The handler's signature is already an error: a stub keeps typed sends compiling.
            _ => quote! {
                let _ = event;
                _cc::__private::Box::pin(async { _cc::__private::Ok(()) })
            },
        };
        quote! {
            #[automatically_derived]
            impl _cc::__private::Supports<#ev> for #self_ty {
                fn __send<'a>(&'a self, event: &'a #ev) -> _cc::__private::BoxFuture<'a, #result_ty> {
                    #body
                }
            }
        }
    });

    let exact = aliases.iter().map(|ev| {
        let downcast = ops(ev, quote!(downcast));
        quote! {
            if let _cc::__private::Some(e) = (#downcast)(event) {
                return <Self as _cc::__private::Supports<#ev>>::__send(self, e);
            }
        }
    });

    let subclass: Vec<(usize, &Entry, &Ident)> = entries
        .iter()
        .zip(&aliases)
        .enumerate()
        .filter(|(_, (e, _))| e.include_subclasses && usable(e))
        .map(|(i, (e, alias))| (i, e, alias))
        .collect();
    let (walk, supports_fn) = if subclass.is_empty() {
        (TokenStream::new(), TokenStream::new())
    } else {
        let arms = subclass.iter().map(|&(i, e, ev)| {
            let shim = shim_name(e.method);
            let upcast = upcast::call(i, e, quote!(e));
            let ev_kind = ops(ev, quote!(kind));
            let upcast_ref = ops(ev, quote!(upcast));
            quote! {
                if kind == #ev_kind {
                    if let _cc::__private::Some(e) = (#upcast_ref)(event) {
                        return #shim(self, #upcast, event.name());
                    }
                }
            }
        });
        let ancestors = subclass.iter().map(|&(_, _, ev)| {
            let ev_kind = ops(ev, quote!(kind));
            quote!(|| kind.is_a(#ev_kind))
        });
        (
            quote! {
                // `include_subclasses`: the nearest registered ancestor handles a descendant.
                let mut parent = event.kind().parent();
                while let _cc::__private::Some(kind) = parent {
                    #(#arms)*
                    parent = kind.parent();
                }
            },
            quote! {
                fn supports(&self, kind: &_cc::__private::EventKind) -> bool {
                    <Self as _cc::__private::Connector>::SUPPORTED.iter().any(|k| *k == kind)
                        #(#ancestors)*
                }
            },
        )
    };

    quote! {
        #[doc(hidden)]
        const _: () = {
            use #krate as _cc;
            #(#checks)*
            #(#upcasts)*
            #(#shims)*

            #[automatically_derived]
            impl _cc::__private::Connector for #self_ty {
                const SUPPORTED: &'static [&'static _cc::__private::EventKind] = &[#(#supported),*];

                #connect
                #listen
                #disconnect

                fn dispatch<'a>(
                    &'a self,
                    event: &'a _cc::__private::AnyEvent,
                ) -> _cc::__private::BoxFuture<'a, #result_ty> {
                    #(#exact)*
                    #walk
                    _cc::__private::Box::pin(async move {
                        _cc::__private::Err(_cc::__private::unsupported(
                            _cc::__private::ConnectorInfo::name(self),
                            event,
                        ))
                    })
                }

                #supports_fn
            }

            #(#supports_impls)*
        };
    }
}

/// `connect`, `listen` or `disconnect`: a call to the user's method, or a stub returning `Ok`
/// when it is missing (then `connect`/`listen` already have an error) or unusable.
fn lifecycle(
    model: &ConnectorImpl,
    name: &str,
    params: TokenStream,
    args: TokenStream,
) -> TokenStream {
    let fn_ident = Ident::new(name, Span::call_site());
    let ret = quote! {
        impl _cc::__private::Future<
            Output = _cc::__private::Result<(), _cc::__private::ConnectorError>,
        > + _cc::__private::Send
    };
    match model.method(name) {
        Some(m) if m.callable => {
            let self_ty = model.self_ty;
            let user = Ident::new(&m.ident.to_string(), m.output_span());
            let span = m.ident.span();
            let call = quote_spanned!(m.output_span()=> <#self_ty>::#user(self #args).await);
            let result = quote_spanned!(m.output_span()=> _cc::__private::connector_result(#call));
            quote_spanned! {span=>
                #[allow(clippy::manual_async_fn)] // spanned at the user's method
                fn #fn_ident(&self #params) -> #ret {
                    async move { #result }
                }
            }
        }
        _ => {
            let params = if name == "listen" {
                quote!(, _bot: &_cc::__private::Bot)
            } else {
                params
            };
            quote! {
                fn #fn_ident(&self #params) -> #ret {
                    async { _cc::__private::Ok(()) }
                }
            }
        }
    }
}

/// `_cc::__private::event_ops::<E>().field`, spanned at the user's `E` (through its alias):
/// every use of `E` fails with the same error on the same token when `E` is no event, and
/// rustc reports it once.
fn ops(ev: &Ident, field: TokenStream) -> TokenStream {
    quote_spanned!(ev.span()=> _cc::__private::event_ops::<#ev>().#field)
}

/// The alias of entry `index`'s event, spanned at the user's path.
fn event_alias(index: usize, entry: &Entry) -> Ident {
    Ident::new(&format!("__connector_event_{index}"), entry.event.span())
}

/// The output plus every collected error.
pub(crate) fn finish(cx: Ctxt, tokens: TokenStream) -> TokenStream {
    match cx.check() {
        Ok(()) => tokens,
        Err(err) => {
            let err = err.into_compile_error();
            quote!(#tokens #err)
        }
    }
}

/// `MyChat` → `my_chat`, `HTTPServer` → `http_server`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(|n| n.is_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `CONNECTOR_MACROS_DEBUG=1` prints every expansion to stderr.
pub(crate) fn debug_print(what: &str, out: &TokenStream) {
    if std::env::var_os("CONNECTOR_MACROS_DEBUG").is_some() {
        eprintln!("// #[{what}] expansion:\n{out}");
    }
}
