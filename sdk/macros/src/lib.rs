//! The kind attributes of `fjord-sdk`: `#[fjord_sdk::processor]`,
//! `#[fjord_sdk::source]`, `#[fjord_sdk::sink]`,
//! `#[fjord_sdk::partitioner]` and `#[fjord_sdk::serializer]`.
//!
//! Each goes on the `impl` of its kind trait, keeps the `impl` as written and
//! adds the exports (`fjord_sdk::__export!`), which are WebAssembly component
//! exports on `wasm32` and Fjord's C ABI elsewhere. Not for use without
//! `fjord-sdk`, whose macros the expansion calls.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemImpl, parse_macro_input};

fn export(kind: &str, trait_name: &str, attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let msg = format!(
            "#[fjord_sdk::{kind}] takes no arguments; describe the plugin in `Plugin::info`"
        );
        return syn::Error::new(
            proc_macro2::TokenStream::from(attr)
                .into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |t| t.span()),
            msg,
        )
        .to_compile_error()
        .into();
    }
    let item = parse_macro_input!(item as ItemImpl);
    let named_trait = item
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|s| s.ident == trait_name);
    if !named_trait {
        let msg = format!("#[fjord_sdk::{kind}] goes on `impl {trait_name} for YourType`");
        return syn::Error::new_spanned(&item.self_ty, msg)
            .to_compile_error()
            .into();
    }
    let self_ty = &item.self_ty;
    let kind = syn::Ident::new(kind, proc_macro2::Span::call_site());
    quote! {
        #item
        ::fjord_sdk::__export!(#kind, #self_ty);
    }
    .into()
}

/// Exports a `Processor` implementation as the plugin of its crate.
#[proc_macro_attribute]
pub fn processor(attr: TokenStream, item: TokenStream) -> TokenStream {
    export("processor", "Processor", attr, item)
}

/// Exports a `Source` implementation as the plugin of its crate.
#[proc_macro_attribute]
pub fn source(attr: TokenStream, item: TokenStream) -> TokenStream {
    export("source", "Source", attr, item)
}

/// Exports a `Sink` implementation as the plugin of its crate.
#[proc_macro_attribute]
pub fn sink(attr: TokenStream, item: TokenStream) -> TokenStream {
    export("sink", "Sink", attr, item)
}

/// Exports a `Partitioner` implementation as the plugin of its crate.
#[proc_macro_attribute]
pub fn partitioner(attr: TokenStream, item: TokenStream) -> TokenStream {
    export("partitioner", "Partitioner", attr, item)
}

/// Exports a `Serializer` implementation as the plugin of its crate.
#[proc_macro_attribute]
pub fn serializer(attr: TokenStream, item: TokenStream) -> TokenStream {
    export("serializer", "Serializer", attr, item)
}
