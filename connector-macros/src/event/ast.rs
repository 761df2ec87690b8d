//! The model `#[derive(Event)]` works from: the struct's name, generics, `#[event(...)]`
//! arguments and fields, each keeping the user's tokens for later errors.

use syn::{Data, DataEnum, DataUnion, DeriveInput, Fields, FieldsUnnamed, Generics, Ident, Type};

use super::attr::{self, ContainerArgs, FieldArgs};
use crate::ctxt::Ctxt;

/// The type under `#[derive(Event)]`.
pub(crate) struct EventInput<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    pub(crate) args: ContainerArgs,
    pub(crate) body: Body<'a>,
}

/// What the type is made of.
pub(crate) enum Body<'a> {
    /// A struct with named fields (possibly none): the only shape an event can have.
    Named(Vec<Field<'a>>),
    Tuple(&'a FieldsUnnamed),
    Unit,
    Enum(&'a DataEnum),
    Union(&'a DataUnion),
}

/// A named field and its `#[event(...)]` markers.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) args: FieldArgs,
}

impl<'a> EventInput<'a> {
    /// Reads the derive input; bad `#[event(...)]` arguments are reported to `cx`.
    pub(crate) fn from_syn(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let args = attr::container_args(cx, &input.attrs);
        let body = match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => Body::Named(
                    named
                        .named
                        .iter()
                        .filter_map(|f| {
                            Some(Field {
                                ident: f.ident.as_ref()?,
                                ty: &f.ty,
                                args: attr::field_args(cx, &f.attrs),
                            })
                        })
                        .collect(),
                ),
                Fields::Unnamed(fields) => Body::Tuple(fields),
                Fields::Unit => Body::Unit,
            },
            Data::Enum(e) => Body::Enum(e),
            Data::Union(u) => Body::Union(u),
        };
        EventInput {
            ident: &input.ident,
            generics: &input.generics,
            args,
            body,
        }
    }

    /// Whether the type has generic parameters or a where clause.
    pub(crate) fn is_generic(&self) -> bool {
        !self.generics.params.is_empty() || self.generics.where_clause.is_some()
    }

    /// The event's name: `#[event(name = "…")]`, or the struct's name.
    pub(crate) fn name(&self) -> String {
        match &self.args.name {
            Some(arg) => arg.value.value(),
            None => self.ident.to_string(),
        }
    }
}
