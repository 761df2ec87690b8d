//! Checks of `#[derive(Event)]`'s input, and the choice of the field that holds the metadata
//! or the parent event. Every mistake is reported once; a choice is still made where the
//! intent is clear, so the fallback expansion matches what the user meant.

use proc_macro2::Span;
use syn::{Ident, Type};

use super::ast::{Body, EventInput, Field};
use crate::ctxt::{Ctxt, with_help};

/// What the expansion reads the event from.
pub(crate) enum Shape<'a> {
    /// A root event: this field holds the `EventMeta`.
    Root(Slot<'a>),
    /// A child event: this field holds the parent event.
    Child(Slot<'a>),
    /// No usable field (already an error): the expansion is a stub.
    Unknown,
}

/// The field a [`Shape`] reads.
#[derive(Clone, Copy)]
pub(crate) struct Slot<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
}

impl<'a> From<&Field<'a>> for Slot<'a> {
    fn from(field: &Field<'a>) -> Self {
        Slot {
            ident: field.ident,
            ty: field.ty,
        }
    }
}

/// Checks the input; returns where the event's metadata or parent is.
pub(crate) fn check<'a>(cx: &Ctxt, input: &EventInput<'a>) -> Shape<'a> {
    let ident = input.ident;
    if input.is_generic() {
        cx.error_spanned_by(
            input.generics,
            with_help(
                "an event type cannot be generic",
                "every event has one `EventKind`; make a concrete type per event",
            ),
        );
    }
    match &input.body {
        Body::Named(fields) => select(cx, ident, fields),
        Body::Unit => {
            cx.error_spanned_by(
                ident,
                with_help(
                    "`#[derive(Event)]` needs a struct with named fields",
                    format!("write `struct {ident} {{ meta: EventMeta }}`"),
                ),
            );
            Shape::Unknown
        }
        Body::Tuple(fields) => {
            cx.error_spanned_by(
                fields,
                with_help(
                    "`#[derive(Event)]` needs a struct with named fields, not a tuple struct",
                    format!("write `struct {ident} {{ meta: EventMeta, … }}`"),
                ),
            );
            Shape::Unknown
        }
        Body::Enum(e) => {
            cx.error_spanned_by(
                e.enum_token,
                with_help(
                    "`#[derive(Event)]` works on structs, not enums",
                    "make one struct per event; a child event names its parent with `#[event(parent)]`",
                ),
            );
            Shape::Unknown
        }
        Body::Union(u) => {
            cx.error_spanned_by(
                u.union_token,
                with_help(
                    "`#[derive(Event)]` works on structs, not unions",
                    format!("write `struct {ident} {{ meta: EventMeta, … }}`"),
                ),
            );
            Shape::Unknown
        }
    }
}

/// Picks the metadata or the parent field of a struct with named fields.
fn select<'a>(cx: &Ctxt, ident: &Ident, fields: &[Field<'a>]) -> Shape<'a> {
    let marked = |which: fn(&Field) -> Option<Span>| -> Vec<(&Field<'a>, Span)> {
        fields
            .iter()
            .filter_map(|f| which(f).map(|marker| (f, marker)))
            .collect()
    };
    let metas = marked(|f| f.args.meta);
    let parents = marked(|f| f.args.parent);
    // A misspelt marker (`#[event(mata)]`) is already an error and is not reported again.
    for (field, marker) in metas.iter().skip(1) {
        if !field.args.malformed {
            cx.error_at(
                *marker,
                with_help(
                    "more than one field is marked `#[event(meta)]`",
                    "an event has one `EventMeta` field",
                ),
            );
        }
    }
    for (field, marker) in parents.iter().skip(1) {
        if !field.args.malformed {
            cx.error_at(
                *marker,
                with_help(
                    "more than one field is marked `#[event(parent)]`",
                    "an event has at most one parent event",
                ),
            );
        }
    }
    let implicit = fields
        .iter()
        .find(|f| f.args.meta.is_none() && f.args.parent.is_none() && f.ident == "meta");
    let meta = metas.first().map(|(f, _)| *f).or(implicit);

    match (meta, parents.first()) {
        (Some(meta), None) => Shape::Root(meta.into()),
        (None, Some((parent, _))) => Shape::Child((*parent).into()),
        (Some(meta), Some((parent, marker))) => {
            if !meta.args.malformed && !parent.args.malformed {
                cx.error_at(
                    *marker,
                    with_help(
                        format!(
                            "`{ident}` has both an event metadata field (`{}`) and a parent event field (`{}`)",
                            meta.ident, parent.ident
                        ),
                        "a root event holds `meta: EventMeta`; a child event holds only its parent (which holds the metadata): remove one",
                    ),
                );
            }
            // The explicit parent marker wins: uses of the parent's fields keep compiling.
            Shape::Child((*parent).into())
        }
        (None, None) => unmarked(cx, ident, fields),
    }
}

/// Neither a metadata nor a parent field: one error, on the most likely culprit.
fn unmarked<'a>(cx: &Ctxt, ident: &Ident, fields: &[Field<'a>]) -> Shape<'a> {
    if fields.iter().any(|f| f.args.malformed) {
        // A wrong `#[event(...)]` on a field is already reported and probably meant to
        // mark it; saying that nothing is marked would report the same mistake twice.
        return Shape::Unknown;
    }
    let holds_meta: Vec<&Field<'a>> = fields.iter().filter(|f| is_event_meta(f.ty)).collect();
    if let [field] = holds_meta.as_slice() {
        let name = field.ident;
        cx.error_spanned_by(
            name,
            with_help(
                format!(
                    "field `{name}` of `{ident}` holds an `EventMeta` but is not marked as the event's metadata"
                ),
                format!("write `#[event(meta)]` above `{name}`, or name the field `meta`"),
            ),
        );
        return Shape::Root((*field).into());
    }
    cx.error_spanned_by(
        ident,
        with_help(
            format!("`{ident}` has no event metadata field and no parent event field"),
            "add `meta: EventMeta` for a root event, or mark the parent event field `#[event(parent)]` for a child event (`#[event(parent)] message: Message`)",
        ),
    );
    Shape::Unknown
}

/// `EventMeta`, `connector_core::EventMeta` and the like.
fn is_event_meta(ty: &Type) -> bool {
    match ty {
        Type::Path(tp) => tp
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "EventMeta" && s.arguments.is_none()),
        _ => false,
    }
}
