//! Parsing of attribute arguments: `#[connector(...)]` and `#[register_event(...)]`, and the
//! helpers `event/attr.rs` shares for `#[event(...)]`. Bad arguments are reported through the
//! [`Ctxt`] and otherwise ignored, so the user sees every bad argument at once and the rest
//! of the expansion still happens.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Ident, LitStr, Meta, Path, Token, Type};

use crate::ctxt::{Ctxt, with_help};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(config);
    syn::custom_keyword!(include_subclasses);
}

/// One `key = value` argument, with the key's span for later errors.
pub(crate) struct Arg<T> {
    pub(crate) key: Span,
    pub(crate) value: T,
}

/// The arguments of `#[connector(...)]`.
#[derive(Default)]
pub(crate) struct ConnectorArgs {
    pub(crate) name: Option<Arg<LitStr>>,
    pub(crate) config: Option<Arg<Type>>,
    pub(crate) krate: Option<Arg<Path>>,
}

const CONNECTOR_ARGS: &[&str] = &["name", "config", "crate"];

/// Parses `#[connector(...)]`'s arguments; errors go to `cx`.
pub(crate) fn connector_args(cx: &Ctxt, tokens: TokenStream) -> ConnectorArgs {
    let mut args = ConnectorArgs::default();
    let parser = |input: ParseStream| parse_connector_args(cx, input, &mut args);
    if let Err(err) = parser.parse2(tokens) {
        cx.syn_error(err);
    }
    args
}

fn parse_connector_args(
    cx: &Ctxt,
    input: ParseStream,
    args: &mut ConnectorArgs,
) -> syn::Result<()> {
    comma_separated(input, |input| {
        let lookahead = input.lookahead1();
        if lookahead.peek(kw::name) {
            let key: kw::name = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse()?;
            if value.value().is_empty() {
                cx.error_spanned_by(
                    &value,
                    with_help(
                        "a connector name cannot be empty",
                        "it is the key under `connectors:` in the configuration, e.g. `name = \"slack\"`",
                    ),
                );
            }
            set_once(cx, &mut args.name, "connector", "name", key.span, value);
        } else if lookahead.peek(kw::config) {
            let key: kw::config = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: Type = input.parse()?;
            set_once(cx, &mut args.config, "connector", "config", key.span, value);
        } else if lookahead.peek(Token![crate]) {
            crate_arg(cx, input, &mut args.krate, "connector")?;
        } else if input.peek(Ident::peek_any) {
            let key = Ident::parse_any(input)?;
            unknown_argument(cx, &key, "connector", CONNECTOR_ARGS);
            skip_value(input)?;
        } else {
            return Err(lookahead.error());
        }
        Ok(())
    })
}

/// The arguments of one `#[register_event(...)]`.
pub(crate) struct RegisterArgs {
    pub(crate) events: Vec<Type>,
    pub(crate) include_subclasses: bool,
}

/// Whether `attr` is a `#[register_event]` (also when written with a path,
/// `#[connector_core::register_event]`).
pub(crate) fn is_register_event(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "register_event")
}

/// Parses one `#[register_event(...)]`; errors go to `cx`.
pub(crate) fn register_args(cx: &Ctxt, attr: &Attribute) -> RegisterArgs {
    let mut args = RegisterArgs {
        events: Vec::new(),
        include_subclasses: false,
    };
    let list = match &attr.meta {
        Meta::List(list) => list,
        Meta::Path(_) | Meta::NameValue(_) => {
            cx.error_spanned_by(attr, no_events_message());
            return args;
        }
    };
    let parser = |input: ParseStream| parse_register_args(cx, input, &mut args);
    if let Err(err) = parser.parse2(list.tokens.clone()) {
        cx.syn_error(err);
    }
    if args.events.is_empty() {
        cx.error_spanned_by(attr, no_events_message());
    }
    args
}

fn no_events_message() -> String {
    with_help(
        "`#[register_event]` needs at least one event type",
        "name the events this method sends, e.g. `#[register_event(Message)]` or `#[register_event(Image, Video)]`",
    )
}

fn parse_register_args(cx: &Ctxt, input: ParseStream, args: &mut RegisterArgs) -> syn::Result<()> {
    let mut seen_flag = false;
    comma_separated(input, |input| {
        let fork = input.fork();
        if fork.parse::<kw::include_subclasses>().is_ok()
            && (fork.is_empty() || fork.peek(Token![,]))
        {
            let flag: kw::include_subclasses = input.parse()?;
            if seen_flag {
                cx.error_spanned_by(flag, "duplicate `include_subclasses`");
            }
            seen_flag = true;
            args.include_subclasses = true;
        } else {
            let ty: Type = input.parse()?;
            if let Some(ident) = lowercase_single_ident(&ty) {
                let word = ident.to_string();
                if word != "include_subclasses" && edit_distance(&word, "include_subclasses") <= 2 {
                    cx.error_spanned_by(
                        ident,
                        with_help(
                            format!("unknown `#[register_event]` flag `{word}`"),
                            "did you mean `include_subclasses`?",
                        ),
                    );
                    return Ok(());
                }
            }
            args.events.push(ty);
        }
        Ok(())
    })
}

fn lowercase_single_ident(ty: &Type) -> Option<&Ident> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let ident = tp.path.get_ident()?;
    let first = ident.to_string().chars().next()?;
    first.is_lowercase().then_some(ident)
}

/// Parses `item, item, …` (a trailing comma allowed) with `item` parsing one argument.
pub(crate) fn comma_separated(
    input: ParseStream,
    mut item: impl FnMut(ParseStream) -> syn::Result<()>,
) -> syn::Result<()> {
    while !input.is_empty() {
        item(input)?;
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

/// `crate = "path"` (the `crate` keyword already peeked), shared by `#[connector(...)]` and
/// `#[event(...)]`: where `connector_core` is when it is used under another name.
pub(crate) fn crate_arg(
    cx: &Ctxt,
    input: ParseStream,
    slot: &mut Option<Arg<Path>>,
    attr: &str,
) -> syn::Result<()> {
    let key: Token![crate] = input.parse()?;
    input.parse::<Token![=]>()?;
    let lit: LitStr = input.parse()?;
    match lit.parse::<Path>() {
        Ok(path) => set_once(cx, slot, attr, "crate", key.span, path),
        Err(_) => cx.error_spanned_by(
            &lit,
            with_help(
                format!("`crate = {:?}` is not a path", lit.value()),
                "name the crate that re-exports connector_core, e.g. `crate = \"my_sdk::connector_core\"`",
            ),
        ),
    }
    Ok(())
}

pub(crate) fn set_once<T>(
    cx: &Ctxt,
    slot: &mut Option<Arg<T>>,
    attr: &str,
    key_name: &str,
    key: Span,
    value: T,
) {
    if slot.is_some() {
        cx.error_at(
            key,
            with_help(
                format!("duplicate `#[{attr}]` argument `{key_name}`"),
                format!("give `{key_name}` only once"),
            ),
        );
    } else {
        *slot = Some(Arg { key, value });
    }
}

/// Reports an unknown argument, suggesting the closest known one; returns that suggestion.
pub(crate) fn unknown_argument<'k>(
    cx: &Ctxt,
    key: &Ident,
    attr: &str,
    known: &[&'k str],
) -> Option<&'k str> {
    let word = key.unraw().to_string();
    let list = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let best = closest(&word, known);
    let help = match best {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("`#[{attr}]` takes {list}"),
    };
    cx.error_spanned_by(
        key,
        with_help(format!("unknown `#[{attr}]` argument `{word}`"), help),
    );
    best
}

/// The known word within edit distance 2 of `word`, if any.
pub(crate) fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, with a transposition counted as one edit.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Skips `= value` of an unknown argument, up to the next top-level comma.
pub(crate) fn skip_value(input: ParseStream) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
    }
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}
