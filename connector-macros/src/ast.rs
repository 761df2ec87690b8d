//! The model the expansion works from, built from the user's syntax tree. Each node keeps a
//! reference to (or the span of) the user's tokens, so later errors point at them.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, ReceiverKind, ReturnType, Type,
};

use crate::attr::{self, RegisterArgs};
use crate::ctxt::{Ctxt, with_help};

/// An inherent `impl S { … }` under `#[connector]`.
pub(crate) struct ConnectorImpl<'a> {
    pub(crate) original: &'a ItemImpl,
    pub(crate) self_ty: &'a Type,
    pub(crate) methods: Vec<Method<'a>>,
}

/// One method of the impl block.
pub(crate) struct Method<'a> {
    pub(crate) original: &'a ImplItemFn,
    pub(crate) ident: &'a Ident,
    pub(crate) registrations: Vec<Registration<'a>>,
    /// The handler's event argument (`&T`) and `T`, when the signature has exactly one.
    pub(crate) arg: Option<(&'a Type, &'a Type)>,
    /// Whether the signature is usable as written: async, `&self`, no generics.
    pub(crate) callable: bool,
}

/// One `#[register_event(...)]` attribute.
pub(crate) struct Registration<'a> {
    pub(crate) attr: &'a Attribute,
    pub(crate) events: Vec<Type>,
    pub(crate) include_subclasses: bool,
}

/// The lifecycle methods the macro wires up.
pub(crate) const LIFECYCLE: &[&str] = &["connect", "listen", "disconnect"];

impl<'a> ConnectorImpl<'a> {
    pub(crate) fn from_syn(cx: &Ctxt, original: &'a ItemImpl) -> Self {
        let methods = original
            .items
            .iter()
            .filter_map(|item| match item {
                ImplItem::Fn(f) => Some(Method::from_syn(cx, f)),
                _ => None,
            })
            .collect();
        ConnectorImpl {
            original,
            self_ty: &original.self_ty,
            methods,
        }
    }

    /// The method called `name`, if any.
    pub(crate) fn method(&self, name: &str) -> Option<&Method<'a>> {
        self.methods.iter().find(|m| m.ident == name)
    }

    /// Methods with at least one `#[register_event]`.
    pub(crate) fn handlers(&self) -> impl Iterator<Item = &Method<'a>> {
        self.methods.iter().filter(|m| !m.registrations.is_empty())
    }
}

impl<'a> Method<'a> {
    fn from_syn(cx: &Ctxt, original: &'a ImplItemFn) -> Self {
        let registrations: Vec<Registration<'a>> = original
            .attrs
            .iter()
            .filter(|a| attr::is_register_event(a))
            .map(|a| {
                let RegisterArgs {
                    events,
                    include_subclasses,
                } = attr::register_args(cx, a);
                Registration {
                    attr: a,
                    events,
                    include_subclasses,
                }
            })
            .collect();
        let sig = &original.sig;
        let ident = &sig.ident;
        let is_handler = !registrations.is_empty();
        let is_lifecycle = LIFECYCLE.iter().any(|l| ident == l);
        let mut callable = true;
        let mut arg = None;

        if is_handler || is_lifecycle {
            if sig.asyncness.is_none() {
                callable = false;
                let (what, signature) = if is_handler {
                    (
                        "event handler",
                        format!("async fn {ident}(&self, event: &…) -> Result<()>"),
                    )
                } else if ident == "listen" {
                    (
                        "",
                        "async fn listen(&self, bot: &Bot) -> Result<()>".to_owned(),
                    )
                } else {
                    ("", format!("async fn {ident}(&self) -> Result<()>"))
                };
                cx.error_spanned_by(
                    sig.fn_token,
                    with_help(
                        format!(
                            "{what}{}`{ident}` must be an `async fn`",
                            if what.is_empty() { "" } else { " " }
                        ),
                        format!("write `{signature}`"),
                    ),
                );
            }
            if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
                callable = false;
                cx.error_spanned_by(
                    &sig.generics,
                    with_help(
                        format!("`{ident}` cannot be generic"),
                        "the macro calls it with concrete types; remove the generic parameters",
                    ),
                );
            }
            match sig.inputs.first() {
                Some(FnArg::Receiver(r))
                    if matches!(r.kind, ReceiverKind::Reference(_, _, None)) => {}
                Some(FnArg::Receiver(r)) => {
                    callable = false;
                    cx.error_spanned_by(
                        r,
                        with_help(
                            format!("`{ident}` must take `&self`"),
                            "connectors are shared between tasks; keep mutable state behind a `Mutex` or an atomic",
                        ),
                    );
                }
                _ => {
                    callable = false;
                    cx.error_spanned_by(
                        ident,
                        with_help(
                            format!("`{ident}` must take `&self`"),
                            format!("write `async fn {ident}(&self, …)`"),
                        ),
                    );
                }
            }
        }

        if is_lifecycle && !is_handler && !lifecycle_arguments(cx, original) {
            callable = false;
        }

        if is_handler {
            let rest: Vec<&FnArg> = sig
                .inputs
                .iter()
                .filter(|a| matches!(a, FnArg::Typed(_)))
                .collect();
            let first_event = registrations
                .iter()
                .flat_map(|r| r.events.first())
                .next()
                .map(|t| quote::quote!(#t).to_string().replace(' ', ""))
                .unwrap_or_else(|| "Message".to_owned());
            match rest.as_slice() {
                [FnArg::Typed(pt)] => match &*pt.ty {
                    Type::Reference(r) if r.mutability.is_none() => {
                        arg = Some((&*pt.ty, &*r.elem));
                    }
                    other => {
                        callable = false;
                        cx.error_spanned_by(
                            other,
                            with_help(
                                "an event handler takes its event by shared reference",
                                format!("write `event: &{first_event}`"),
                            ),
                        );
                    }
                },
                _ => {
                    callable = false;
                    let span = if rest.is_empty() {
                        sig.paren_token.span.join()
                    } else {
                        rest[1..]
                            .iter()
                            .map(|a| a.span())
                            .reduce(|a, b| a.join(b).unwrap_or(a))
                            .unwrap_or_else(|| sig.paren_token.span.join())
                    };
                    cx.error_at(
                        span,
                        with_help(
                            format!(
                                "an event handler takes exactly one argument besides `&self`, the event; `{ident}` takes {}",
                                rest.len()
                            ),
                            format!("write `async fn {ident}(&self, event: &{first_event}) -> Result<()>`"),
                        ),
                    );
                }
            }
        }

        Method {
            original,
            ident,
            registrations,
            arg,
            callable,
        }
    }

    /// Where a wrong return type is reported.
    pub(crate) fn output_span(&self) -> Span {
        match &self.original.sig.output {
            ReturnType::Default => self.ident.span(),
            ReturnType::Type(_, ty) => ty.span(),
        }
    }
}

/// Checks the arguments of `connect`, `disconnect` (none besides `&self`) and `listen` (the
/// bot, by shared reference); reports a wrong list on the arguments the user wrote and
/// returns whether the list is usable. Without this the generated call fails with rustc's
/// "this method takes 1 argument but 2 arguments were supplied", pointing at `#[connector]`.
fn lifecycle_arguments(cx: &Ctxt, original: &ImplItemFn) -> bool {
    let sig = &original.sig;
    let ident = &sig.ident;
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(pt) => Some(pt),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let (wanted, signature) = if ident == "listen" {
        (
            1,
            "async fn listen(&self, bot: &Bot) -> Result<()>".to_owned(),
        )
    } else {
        (0, format!("async fn {ident}(&self) -> Result<()>"))
    };
    let help = format!("write `{signature}`");
    if typed.len() > wanted {
        let span = typed[wanted..]
            .iter()
            .map(|a| a.span())
            .reduce(|a, b| a.join(b).unwrap_or(a))
            .unwrap_or_else(|| sig.paren_token.span.join());
        let message = if wanted == 0 {
            format!(
                "`{ident}` takes no arguments besides `&self`; it takes {}",
                typed.len()
            )
        } else {
            format!(
                "`listen` takes exactly one argument besides `&self`, the bot; it takes {}",
                typed.len()
            )
        };
        let help = if ident == "connect" {
            format!("{help}, and read settings from the configuration (`self.config()`)")
        } else {
            help
        };
        cx.error_at(span, with_help(message, help));
        return false;
    }
    if typed.len() < wanted {
        cx.error_at(
            sig.paren_token.span.join(),
            with_help(
                "`listen` needs the bot, to hand it the events it receives",
                format!("{help} and pass each event to `bot`"),
            ),
        );
        return false;
    }
    if let Some(bot) = typed.first() {
        let by_ref = matches!(&*bot.ty, Type::Reference(r) if r.mutability.is_none());
        if !by_ref {
            cx.error_spanned_by(
                &bot.ty,
                with_help(
                    "`listen` takes the bot by shared reference",
                    format!("write `{}: &Bot`", bot.pat.to_token_stream()),
                ),
            );
            return false;
        }
    }
    true
}
