//! `#[derive(shmkit::Element)]`. Use it through `shmkit`, which re-exports
//! it; what it checks and what the element layout description is are in
//! the documentation of `shmkit::element`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Error, Meta, Token};

/// Implements `shmkit::Element`, `shmkit::bytemuck::Pod` and
/// `shmkit::bytemuck::Zeroable` for a `#[repr(C)]` (or
/// `#[repr(transparent)]`) struct whose fields are all elements and which
/// has no padding; a compile error says which of these does not hold.
/// Derive `Clone` and `Copy` too (`Pod` needs them), and neither
/// `bytemuck::Pod` nor `bytemuck::Zeroable`.
///
/// ```
/// #[derive(Clone, Copy, shmkit::Element)]
/// #[repr(C)]
/// struct Reading {
///     at_micros: u64,
///     value: f32,
///     _pad: [u8; 4],
/// }
/// ```
#[proc_macro_derive(Element)]
pub fn derive_element(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    let fields = match &input.data {
        Data::Struct(s) => &s.fields,
        Data::Enum(e) => {
            return Err(Error::new(
                e.enum_token.span,
                "#[derive(shmkit::Element)] takes a struct: an enum has bit patterns that are \
                 no value of it, so another process could write an invalid one",
            ))
        }
        Data::Union(u) => {
            return Err(Error::new(
                u.union_token.span,
                "#[derive(shmkit::Element)] takes a struct, not a union",
            ))
        }
    };
    if !input.generics.params.is_empty() {
        return Err(Error::new_spanned(
            &input.generics,
            "#[derive(shmkit::Element)] takes no generic struct: whether it has padding \
             depends on its parameters. Implement shmkit::Element (and bytemuck's Pod and \
             Zeroable) by hand, as the documentation of shmkit::Element shows",
        ));
    }
    check_repr(input)?;

    let types: Vec<_> = fields.iter().map(|f| &f.ty).collect();
    let padding = format!(
        "#[derive(shmkit::Element)]: `{name}` has padding, bytes that belong to no field, \
         so it cannot be Pod. Make every byte a field: order the fields from the largest \
         alignment to the smallest and add a field such as `_pad: [u8; N]` for the bytes \
         left over"
    );
    // Each field's leaves at its offset; a field type that is not an
    // element fails here, at the field.
    let describe = fields.members().zip(&types).map(|(member, ty)| {
        quote_spanned! {ty.span()=>
            out.field::<#ty>(at + ::core::mem::offset_of!(#name, #member));
        }
    });
    let params = if types.is_empty() {
        quote!(_: usize, _: &mut ::shmkit::element::Leaves)
    } else {
        quote!(at: usize, out: &mut ::shmkit::element::Leaves)
    };
    Ok(quote! {
        const _: () = ::core::assert!(
            ::core::mem::size_of::<#name>() == 0 #(+ ::core::mem::size_of::<#types>())*,
            #padding
        );

        // SAFETY (of both impls): the struct is `repr(C)` or
        // `repr(transparent)` (checked by the derive), not generic, its
        // fields are all `Pod` (`Element: Pod`, required by `describe`),
        // and the assertion above proves that it has no padding. So every
        // bit pattern, zeroes included, is a valid value, and it holds no
        // pointer and no interior mutability.
        #[automatically_derived]
        unsafe impl ::shmkit::bytemuck::Zeroable for #name {}
        #[automatically_derived]
        unsafe impl ::shmkit::bytemuck::Pod for #name {}

        #[automatically_derived]
        impl ::shmkit::Element for #name {
            #[inline]
            fn describe(#params) {
                #(#describe)*
            }
        }
    })
}

/// Requires `#[repr(C)]` or `#[repr(transparent)]`; `packed` and `align`
/// may come with them (the padding assertion covers what they change).
fn check_repr(input: &DeriveInput) -> syn::Result<()> {
    let mut defined = false;
    for attr in &input.attrs {
        if !attr.path().is_ident("repr") {
            continue;
        }
        let hints = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
        defined |= hints
            .iter()
            .any(|h| h.path().is_ident("C") || h.path().is_ident("transparent"));
    }
    if defined {
        return Ok(());
    }
    Err(Error::new(
        input.ident.span(),
        "#[derive(shmkit::Element)] needs #[repr(C)] (or #[repr(transparent)]): without \
         it, the compiler may order the fields differently in another program, so two \
         programs could not agree on the layout",
    ))
}
