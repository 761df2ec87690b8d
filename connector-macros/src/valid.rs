//! Checks that need the whole impl block: required methods, duplicate registrations, names
//! that would hide the `Connector` methods.

use std::collections::HashMap;

use quote::ToTokens;
use syn::Type;

use crate::ast::{ConnectorImpl, Method};
use crate::ctxt::{Ctxt, with_help};

/// One registered event, after duplicates were dropped.
pub(crate) struct Entry<'m, 'a> {
    pub(crate) event: &'m Type,
    pub(crate) method: &'m Method<'a>,
    pub(crate) include_subclasses: bool,
}

/// Inherent methods of these names would hide `Connector`'s methods of the same name.
const RESERVED: &[(&str, &str)] = &[
    ("send", "`Connector::send`, the typed send"),
    (
        "dispatch",
        "`Connector::dispatch`, which the macro generates",
    ),
    ("supports", "`Connector::supports`"),
    (
        "user_typing",
        "`Connector::user_typing`; register a `Typing` handler instead",
    ),
];

/// Checks the impl block; returns the registrations to generate code for.
pub(crate) fn check_impl<'m, 'a>(cx: &Ctxt, imp: &'m ConnectorImpl<'a>) -> Vec<Entry<'m, 'a>> {
    let original = imp.original;
    let self_name = type_name(imp.self_ty);
    if let Some((path, _)) = &original.trait_ {
        cx.error_spanned_by(
            path,
            with_help(
                "`#[connector]` goes on the connector's inherent impl block, not on a trait impl",
                format!(
                    "write `#[connector] impl {self_name} {{ … }}` with `connect`, `listen` and the `#[register_event]` handlers; the macro implements `Connector` itself"
                ),
            ),
        );
    }
    if !original.generics.params.is_empty() || original.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &original.generics,
            with_help(
                "a `#[connector]` impl block cannot be generic",
                "connectors are concrete types: implement the connector for one type",
            ),
        );
    }

    let required: &[(&str, &str)] = if original.trait_.is_some() {
        &[] // already an error; missing methods would only add noise
    } else {
        &[
            ("connect", "async fn connect(&self) -> Result<()>"),
            ("listen", "async fn listen(&self, bot: &Bot) -> Result<()>"),
        ]
    };
    for &(required, signature) in required {
        if imp.method(required).is_none() {
            cx.error_spanned_by(
                imp.self_ty,
                with_help(
                    format!("`#[connector]` impl of `{self_name}` has no `{required}` method"),
                    format!("add `{signature}` to this impl block"),
                ),
            );
        }
    }

    for method in &imp.methods {
        let name = method.ident.to_string();
        if let Some((_, what)) = RESERVED.iter().find(|(n, _)| *n == name) {
            cx.error_spanned_by(
                method.ident,
                with_help(
                    format!("a connector method cannot be called `{name}`: it would hide {what}"),
                    "rename it, e.g. `send_message`",
                ),
            );
        }
        if !method.registrations.is_empty() && crate::ast::LIFECYCLE.contains(&name.as_str()) {
            cx.error_spanned_by(
                method.registrations[0].attr,
                with_help(
                    format!("`{name}` cannot be an event handler"),
                    "move the `#[register_event]` to a method of its own",
                ),
            );
        }
    }

    let mut seen: HashMap<String, &Method> = HashMap::new();
    let mut entries = Vec::new();
    for method in imp.handlers() {
        for registration in &method.registrations {
            for event in &registration.events {
                let key = type_name(event);
                if let Some(first) = seen.get(&key) {
                    let by = if first.ident == method.ident {
                        "this method".to_owned()
                    } else {
                        format!("`{}`", first.ident)
                    };
                    cx.error_spanned_by(
                        event,
                        with_help(
                            format!("`{key}` is already registered by {by}"),
                            "an event type has one handler: remove this registration or the other one",
                        ),
                    );
                    continue;
                }
                seen.insert(key, method);
                entries.push(Entry {
                    event,
                    method,
                    include_subclasses: registration.include_subclasses,
                });
            }
        }
    }
    entries
}

/// A type as the user wrote it, without spaces: `Message`, `events::Message`.
pub(crate) fn type_name(ty: &Type) -> String {
    ty.to_token_stream()
        .to_string()
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" < ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
}
