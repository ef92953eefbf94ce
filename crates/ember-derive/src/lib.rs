//! `#[derive(Show)]`: a record's text in Spark's case-class `toString` form.
//!
//! Use it through `ember` (`use ember::prelude::*;` brings the trait and this
//! derive under the one name `Show`); the examples are on `ember::Show`.
//!
//! # The path to the trait
//!
//! A derive only produces tokens, so the impl it writes must name the trait
//! by a path that resolves in the user's crate. It writes `::ember::Show`,
//! because a program depends on the `ember` facade. A crate that depends on
//! `ember-core` alone, or renames `ember` in its `Cargo.toml`, says where the
//! trait is with `#[show(crate = "ember_core")]` on the type (serde's
//! `#[serde(crate = "...")]` works the same way). Inside `ember-core` itself,
//! unit tests write `#[show(crate = "crate")]`, and doctests start with a
//! hidden `extern crate ember_core as ember;`, which makes `::ember` resolve.
//!
//! Finding the crate's name from `Cargo.toml` at expansion time would spare
//! that attribute, but it needs a TOML parser in every build and still fails
//! for re-exports; one explicit, documented default is easier to trust.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{parse_macro_input, parse_quote, Data, DeriveInput, Fields, Path};

/// Derives `ember::Show` in Spark's case-class form: `Name(a,b)` with each
/// field's own `Show` text in declaration order, joined by commas without
/// spaces; a unit struct or unit variant prints its bare name, and an enum
/// prints only the variant (as a Scala case class or case object of a
/// sealed trait does). Type parameters get a `Show` bound.
///
/// The impl names the trait as `::ember::Show`; a crate that depends on
/// `ember-core` without the facade, or renames `ember`, writes
/// `#[show(crate = "ember_core")]` (or its own name) on the type. A union
/// is an error. Examples are on the trait's page, under "Deriving".
#[proc_macro_derive(Show, attributes(show))]
pub fn derive_show(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn expand(mut input: DeriveInput) -> syn::Result<TokenStream> {
    let krate = crate_path(&input.attrs)?;
    let show: Path = parse_quote!(#krate::Show);
    let body = match &input.data {
        Data::Struct(data) => {
            no_inner_show_attrs(&data.fields)?;
            let name = input.ident.unraw().to_string();
            show_fields(&show, &quote!(Self), &name, &data.fields, true)
        }
        Data::Enum(data) if data.variants.is_empty() => quote!(match *self {}),
        Data::Enum(data) => {
            let mut arms = Vec::new();
            for variant in &data.variants {
                reject_show_attrs(&variant.attrs)?;
                no_inner_show_attrs(&variant.fields)?;
                let ident = &variant.ident;
                let name = ident.unraw().to_string();
                arms.push(show_fields(
                    &show,
                    &quote!(Self::#ident),
                    &name,
                    &variant.fields,
                    false,
                ));
            }
            quote!(match self { #(#arms)* })
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span,
                "`#[derive(Show)]` does not support unions: which field a union holds is not \
                 known at run time; implement `Show` by hand for it",
            ))
        }
    };

    for param in input.generics.type_params_mut() {
        param.bounds.push(parse_quote!(#show));
    }
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #show for #ident #ty_generics #where_clause {
            fn fmt_show(&self, out: &mut ::std::string::String) {
                #body
            }
        }
    })
}

/// The code that writes `name(a,b)` for `fields` reached through `this`
/// (`Self` or `Self::Variant`): a `let` destructuring `self` for a struct,
/// a match arm for an enum variant.
fn show_fields(
    show: &Path,
    this: &TokenStream,
    name: &str,
    fields: &Fields,
    is_struct: bool,
) -> TokenStream {
    let bindings: Vec<_> = (0..fields.len())
        .map(|i| format_ident!("__field{}", i))
        .collect();
    let pattern = match fields {
        Fields::Named(named) => {
            let names = named.named.iter().map(|f| &f.ident);
            quote!(#this { #(#names: #bindings),* })
        }
        Fields::Unnamed(_) => quote!(#this(#(#bindings),*)),
        Fields::Unit => quote!(#this),
    };
    let text = if matches!(fields, Fields::Unit) {
        quote!(out.push_str(#name);)
    } else {
        // Each call names its field's type (`<Type as Show>::fmt_show`), so
        // a field type without `Show` is reported at that field. Only the
        // path takes the field's span: `out` and the bindings keep the call
        // site's, which matters when a `macro_rules!` wrote the type.
        let calls = fields.iter().zip(&bindings).enumerate().map(|(i, (f, b))| {
            let comma = (i > 0).then(|| quote!(out.push(',');));
            let ty = &f.ty;
            let fmt_show = quote_spanned!(ty.span()=> <#ty as #show>::fmt_show);
            quote!(#comma #fmt_show(#b, out);)
        });
        let open = format!("{name}(");
        quote!(out.push_str(#open); #(#calls)* out.push(')');)
    };
    match (is_struct, fields.is_empty()) {
        (true, true) => text,
        (true, false) => quote!(let #pattern = self; #text),
        (false, _) => quote!(#pattern => { #text }),
    }
}

/// `#[show(crate = "path")]`, or `::ember` without it.
fn crate_path(attrs: &[syn::Attribute]) -> syn::Result<Path> {
    let mut path = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("show")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let lit: syn::LitStr = meta.value()?.parse()?;
                path = Some(lit.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error("unknown `show` attribute: only `crate = \"path\"` is known"))
            }
        })?;
    }
    Ok(path.unwrap_or_else(|| parse_quote!(::ember)))
}

fn no_inner_show_attrs(fields: &Fields) -> syn::Result<()> {
    fields.iter().try_for_each(|f| reject_show_attrs(&f.attrs))
}

/// `#[show(...)]` belongs on the type; elsewhere it would be silently ignored.
fn reject_show_attrs(attrs: &[syn::Attribute]) -> syn::Result<()> {
    match attrs.iter().find(|a| a.path().is_ident("show")) {
        Some(attr) => Err(syn::Error::new_spanned(
            attr,
            "`#[show(...)]` goes on the type itself, not on a field or variant",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(input: DeriveInput) -> String {
        match expand(input) {
            Ok(tokens) => panic!("expanded without an error:\n{tokens}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_union_is_an_error_not_a_panic() {
        let msg = error_of(parse_quote! {
            union Bits { i: u32, f: f32 }
        });
        assert!(msg.contains("does not support unions"), "{msg}");
    }

    #[test]
    fn misplaced_or_unknown_attributes_are_errors() {
        let msg = error_of(parse_quote! {
            #[show(krate = "x")]
            struct A(u8);
        });
        assert!(msg.contains("unknown `show` attribute"), "{msg}");
        let msg = error_of(parse_quote! {
            struct B { #[show(crate = "x")] a: u8 }
        });
        assert!(msg.contains("goes on the type itself"), "{msg}");
        let msg = error_of(parse_quote! {
            enum C { #[show(crate = "x")] V }
        });
        assert!(msg.contains("goes on the type itself"), "{msg}");
    }

    #[test]
    fn the_trait_path_defaults_to_the_facade() {
        let tokens = expand(parse_quote!(
            struct A<T>(T);
        ))
        .unwrap()
        .to_string();
        assert!(tokens.contains(":: ember :: Show for A < T >"), "{tokens}");
        assert!(tokens.contains("T : :: ember :: Show"), "{tokens}");
        let tokens = expand(parse_quote! {
            #[show(crate = "ember_core")]
            struct B;
        })
        .unwrap()
        .to_string();
        assert!(tokens.contains("ember_core :: Show for B"), "{tokens}");
    }
}
