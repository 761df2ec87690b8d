//! `#[event(...)]`, the helper attribute of `#[derive(Event)]`: `name` and `crate` on the
//! struct, `meta` and `parent` on a field. Bad arguments are reported through the [`Ctxt`]
//! and otherwise skipped, so every bad argument is reported at once.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Ident, LitStr, Meta, Path, Token};

use crate::attr::{Arg, comma_separated, crate_arg, set_once, skip_value, unknown_argument};
use crate::ctxt::{Ctxt, with_help};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(meta);
    syn::custom_keyword!(parent);
}

/// `#[event(...)]` on the struct.
#[derive(Default)]
pub(crate) struct ContainerArgs {
    pub(crate) name: Option<Arg<LitStr>>,
    pub(crate) krate: Option<Arg<Path>>,
}

/// `#[event(...)]` on a field.
#[derive(Default)]
pub(crate) struct FieldArgs {
    /// The `meta` marker, also when misspelt (then already an error): the fallback expansion
    /// then uses the field as the user meant it.
    pub(crate) meta: Option<Span>,
    /// The `parent` marker, likewise.
    pub(crate) parent: Option<Span>,
    /// Whether an `#[event(...)]` on this field was reported as wrong: the checks of the
    /// whole struct then do not report the same mistake again as a missing field.
    pub(crate) malformed: bool,
}

const CONTAINER_KEYS: &[&str] = &["name", "crate"];
const FIELD_KEYS: &[&str] = &["meta", "parent"];
const CONTAINER_HELP: &str = "on the struct, `#[event(...)]` takes `name = \"…\"` and `crate = \"…\"`, e.g. `#[event(name = \"Blocks\")]`";
const FIELD_HELP: &str =
    "on a field, `#[event(...)]` takes `meta` or `parent`, e.g. `#[event(parent)]`";

/// Parses every `#[event(...)]` on the struct.
pub(crate) fn container_args(cx: &Ctxt, attrs: &[Attribute]) -> ContainerArgs {
    let mut args = ContainerArgs::default();
    for attr in event_attrs(attrs) {
        parse_event_attr(cx, attr, CONTAINER_HELP, |input| {
            container_arg(cx, input, &mut args)
        });
    }
    args
}

fn container_arg(cx: &Ctxt, input: ParseStream, args: &mut ContainerArgs) -> syn::Result<()> {
    let lookahead = input.lookahead1();
    if lookahead.peek(kw::name) {
        let key: kw::name = input.parse()?;
        input.parse::<Token![=]>()?;
        let value: LitStr = input.parse()?;
        if value.value().is_empty() {
            cx.error_spanned_by(
                &value,
                with_help(
                    "an event name cannot be empty",
                    "it is the event's name in logs, errors and `event_type` matchers, e.g. `name = \"Blocks\"`; leave `name` out to use the struct's name",
                ),
            );
        }
        set_once(cx, &mut args.name, "event", "name", key.span, value);
    } else if lookahead.peek(Token![crate]) {
        crate_arg(cx, input, &mut args.krate, "event")?;
    } else if input.peek(kw::meta) || input.peek(kw::parent) {
        let key = Ident::parse_any(input)?;
        let holds = if key == "meta" {
            "`EventMeta`"
        } else {
            "parent event"
        };
        cx.error_spanned_by(
            &key,
            with_help(
                format!("`#[event({key})]` goes on a field, not on the struct"),
                format!("write `#[event({key})]` above the field that holds the {holds}"),
            ),
        );
    } else if input.peek(Ident::peek_any) {
        let key = Ident::parse_any(input)?;
        unknown_argument(cx, &key, "event", CONTAINER_KEYS);
        skip_value(input)?;
    } else {
        return Err(lookahead.error());
    }
    Ok(())
}

/// Parses every `#[event(...)]` on a field.
pub(crate) fn field_args(cx: &Ctxt, attrs: &[Attribute]) -> FieldArgs {
    let mut args = FieldArgs::default();
    let before = cx.error_count();
    for attr in event_attrs(attrs) {
        parse_event_attr(cx, attr, FIELD_HELP, |input| {
            field_arg(cx, input, &mut args)
        });
    }
    args.malformed = cx.error_count() > before;
    args
}

fn field_arg(cx: &Ctxt, input: ParseStream, args: &mut FieldArgs) -> syn::Result<()> {
    let lookahead = input.lookahead1();
    if lookahead.peek(kw::meta) {
        let key: kw::meta = input.parse()?;
        mark(cx, &mut args.meta, "meta", key.span);
    } else if lookahead.peek(kw::parent) {
        let key: kw::parent = input.parse()?;
        mark(cx, &mut args.parent, "parent", key.span);
    } else if input.peek(kw::name) || input.peek(Token![crate]) {
        let key = Ident::parse_any(input)?;
        cx.error_spanned_by(
            &key,
            with_help(
                format!("`#[event({key} = …)]` goes on the struct, not on a field"),
                format!("write `#[event({key} = \"…\")]` above `struct`"),
            ),
        );
        skip_value(input)?;
    } else if input.peek(Ident::peek_any) {
        let key = Ident::parse_any(input)?;
        // A misspelt marker still marks the field, so the fallback matches the intent.
        match unknown_argument(cx, &key, "event", FIELD_KEYS) {
            Some("meta") => {
                args.meta.get_or_insert(key.span());
            }
            Some("parent") => {
                args.parent.get_or_insert(key.span());
            }
            _ => {}
        }
        skip_value(input)?;
    } else {
        return Err(lookahead.error());
    }
    Ok(())
}

/// Records a `meta`/`parent` marker; a second one on the same field is an error.
fn mark(cx: &Ctxt, slot: &mut Option<Span>, key: &str, span: Span) {
    if slot.replace(span).is_some() {
        cx.error_at(
            span,
            with_help(
                format!("duplicate `#[event({key})]`"),
                format!("mark the field `#[event({key})]` once"),
            ),
        );
    }
}

fn event_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("event"))
}

/// Parses the arguments of one `#[event(...)]` with `arg` parsing each; `help` says what the
/// attribute takes there, for syntax errors.
fn parse_event_attr(
    cx: &Ctxt,
    attr: &Attribute,
    help: &str,
    mut arg: impl FnMut(ParseStream) -> syn::Result<()>,
) {
    let list = match &attr.meta {
        Meta::List(list) => list,
        Meta::Path(_) | Meta::NameValue(_) => {
            cx.error_spanned_by(
                attr,
                with_help("`#[event]` needs arguments in parentheses", help),
            );
            return;
        }
    };
    let parser = |input: ParseStream| comma_separated(input, &mut arg);
    if let Err(errors) = parser.parse2(list.tokens.clone()) {
        for err in errors {
            cx.error_at(err.span(), with_help(err, help));
        }
    }
}
