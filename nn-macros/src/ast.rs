//! The declaration as written: syntax only, every token kept with its span.
//!
//! A `network!` holds activation definitions (`activation Swish(beta = 1.0) = |x| ..;`), which
//! any network of the same invocation may use by name, then one or more networks.
//!
//! The header (`#[attrs] vis struct Name [: f64]`) is parsed strictly, since nothing sensible can
//! follow a broken header. The layer list is parsed tolerantly: it is split at top-level commas
//! and each piece parsed on its own, so one malformed layer yields one error and the layers
//! around it are still checked.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, Lit, Token, Visibility, braced, parenthesized};

use crate::errors::Errors;

/// Everything in one `network! { ... }`.
pub struct Input {
    /// Named activations, in the order declared.
    pub definitions: Vec<Definition>,
    /// The networks.
    pub networks: Vec<NetworkInput>,
}

syn::custom_keyword!(activation);

/// `activation Name(constant = value, ..) = |x| expression;`: an activation any network of the
/// invocation uses by name, its constants overridable where it is used (`Name(beta = 2.0)`).
pub struct Definition {
    /// Its name.
    pub name: Ident,
    /// Its named constants with their default values, as written (checked later, so that
    /// a mistake in one is reported with every other).
    pub constants: Vec<Arg>,
    /// The expression.
    pub closure: syn::ExprClosure,
}

/// `network! { ... }`: one network declaration.
pub struct NetworkInput {
    /// Outer attributes and doc comments, passed on to the generated struct.
    pub attrs: Vec<Attribute>,
    /// The struct's visibility.
    pub vis: Visibility,
    /// The struct's name.
    pub ident: Ident,
    /// `: f64` after the name, if written.
    pub scalar: Option<Ident>,
    /// The span of the braces around the layers (for errors about the list as a whole).
    pub body_span: Span,
    /// The layers that parsed.
    pub layers: Vec<LayerSyntax>,
    /// Mistakes in the layer list; the layers that parsed are still checked.
    pub errors: Errors,
    /// `#[weights("file.safetensors")]`: weights compiled into the binary, if asked for.
    pub weights: Option<syn::LitStr>,
}

/// One layer as written: `Name` or `Name(arg, ...)`, or an activation written as a closure
/// (`|x| x * sigmoid(x)`), optionally named: `encoder: Name(..)`.
pub struct LayerSyntax {
    /// The name the user gave the layer (`encoder` in `encoder: Linear(2, 8)`): its field and
    /// `state_dict` prefix.
    pub label: Option<Ident>,
    /// The layer kind's name, e.g. `Linear`; for a closure, `activation` on its first `|`.
    pub name: Ident,
    /// The parenthesised arguments, if any.
    pub args: Option<Args>,
    /// The closure, for an activation written as one.
    pub closure: Option<Box<syn::ExprClosure>>,
}

/// `( arg, arg, ... )` after a layer name.
pub struct Args {
    /// The parentheses, for errors about the argument list as a whole.
    pub paren: syn::token::Paren,
    /// The arguments that parsed.
    pub list: Vec<Arg>,
}

/// One argument: a number (`8`, `0.01`, `-1`), a string (`"tanh"`), a keyword argument
/// (`negative_slope = 0.2`, as torch names it) or, for blocks such as `Residual`, a layer.
pub enum Arg {
    /// A number, possibly negated.
    Number(Number),
    /// A string literal.
    Str(syn::LitStr),
    /// `true` or `false`.
    Bool(syn::LitBool),
    /// `(3, 2)`: a pair (or more) of numbers, as torch takes a kernel's height and width.
    Tuple(syn::token::Paren, Vec<Arg>),
    /// `name = value`.
    Keyword(Ident, Box<Arg>),
    /// A nested layer.
    Layer(LayerSyntax),
}

/// A numeric literal with an optional minus sign.
pub struct Number {
    /// A leading minus sign.
    pub minus: Option<Token![-]>,
    /// The literal itself.
    pub lit: Lit,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut definitions = Vec::new();
        let mut networks = Vec::new();
        while !input.is_empty() {
            let attrs = input.call(Attribute::parse_outer)?;
            if input.peek(activation) && !input.peek2(Token![:]) {
                if !networks.is_empty() {
                    return Err(
                        input.error("activations are defined before the networks that use them")
                    );
                }
                definitions.push(Definition::parse(attrs, input)?);
            } else {
                networks.push(NetworkInput::parse(attrs, input)?);
            }
        }
        if networks.is_empty() {
            return Err(input
                .error("expected a network: `struct Name { Linear(2, 8), ReLU, Linear(8, 1) }`"));
        }
        Ok(Self {
            definitions,
            networks,
        })
    }
}

impl Definition {
    /// Parses a definition after its attributes, which may only be doc comments.
    fn parse(attrs: Vec<Attribute>, input: ParseStream) -> syn::Result<Self> {
        if let Some(other) = attrs.iter().find(|a| !a.path().is_ident("doc")) {
            return Err(syn::Error::new_spanned(
                other,
                "an activation takes doc comments only",
            ));
        }
        input.parse::<activation>()?;
        let name: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), "expected the activation's name, e.g. `activation Swish(beta = 1.0) = |x| x * sigmoid(beta * x);`"))?;
        let mut constants = Vec::new();
        if input.peek(syn::token::Paren) {
            let args: Args = input.parse()?;
            constants = args.list;
        }
        input.parse::<Token![=]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `=` and the expression: `activation {name} = |x| ..;`"),
            )
        })?;
        if !input.peek(Token![|]) && !input.peek(Token![||]) {
            return Err(
                input.error("expected a closure of one variable, e.g. `|x| x * sigmoid(x)`")
            );
        }
        let closure = input.parse()?;
        input.parse::<Token![;]>().map_err(|e| {
            syn::Error::new(e.span(), "expected `;` after the activation's expression")
        })?;
        Ok(Self {
            name,
            constants,
            closure,
        })
    }
}

impl NetworkInput {
    /// Parses one network after its attributes.
    fn parse(mut attrs: Vec<Attribute>, input: ParseStream) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let weights = crate::compiled::take_attribute(&mut attrs, &mut errors);
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let ident: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), "expected the network's name after `struct`"))?;
        let scalar = if input.peek(Token![:]) {
            input.parse::<Token![:]>()?;
            Some(
                input
                    .parse::<Ident>()
                    .map_err(|e| syn::Error::new(e.span(), "expected `f32` or `f64` after `:`"))?,
            )
        } else {
            None
        };
        if !input.peek(syn::token::Brace) {
            return Err(input.error("expected `{` and the network's layers, e.g. `{ Linear(2, 8), ReLU, Linear(8, 1) }`"));
        }
        let body;
        let brace = braced!(body in input);
        let body_tokens: TokenStream = body.parse()?;
        if !input.is_empty()
            && !input.peek(syn::Ident)
            && !input.peek(Token![#])
            && !input.peek(Token![pub])
            && !input.peek(Token![struct])
        {
            return Err(input.error("unexpected tokens after the network's `{ ... }`; another network starts with `struct`"));
        }
        let layers = parse_layers(body_tokens, &mut errors);
        Ok(Self {
            attrs,
            vis,
            ident,
            scalar,
            body_span: brace.span.join(),
            layers,
            errors,
            weights,
        })
    }
}

/// Parses the comma-separated layer list, recording a mistake per malformed piece.
fn parse_layers(tokens: TokenStream, errors: &mut Errors) -> Vec<LayerSyntax> {
    let mut layers = Vec::new();
    for piece in split_at_commas(tokens) {
        match piece {
            Piece::Empty(comma) => errors.at(
                comma,
                "expected a layer before this `,` (two commas in a row?)",
            ),
            Piece::Tokens(tokens) => parse_piece(tokens, &mut layers, errors),
        }
    }
    layers
}

/// What lies between two top-level commas.
enum Piece {
    /// Nothing: the span of the comma that closes it.
    Empty(Span),
    /// Some tokens.
    Tokens(TokenStream),
}

/// Splits at commas outside any group. A trailing comma is allowed, as in Rust lists.
fn split_at_commas(tokens: TokenStream) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut current = TokenStream::new();
    for tree in tokens {
        match &tree {
            // `|x, y| ..` is one (mistaken) closure, reported as such, not split in two.
            TokenTree::Punct(p) if p.as_char() == ',' && in_closure_params(&current) => {
                current.append(tree)
            }
            TokenTree::Punct(p) if p.as_char() == ',' => {
                if current.is_empty() {
                    pieces.push(Piece::Empty(p.span()));
                } else {
                    pieces.push(Piece::Tokens(std::mem::take(&mut current)));
                }
            }
            _ => current.append(tree),
        }
    }
    if !current.is_empty() {
        pieces.push(Piece::Tokens(current));
    }
    pieces
}

/// Whether `piece` (optionally after `name:`) is a closure's `|` whose parameters are not
/// closed yet.
fn in_closure_params(piece: &TokenStream) -> bool {
    let trees: Vec<TokenTree> = piece.clone().into_iter().collect();
    let start = match trees.as_slice() {
        [TokenTree::Ident(_), TokenTree::Punct(colon), ..]
            if colon.as_char() == ':' && colon.spacing() == proc_macro2::Spacing::Alone =>
        {
            2
        }
        _ => 0,
    };
    let pipes = trees
        .iter()
        .filter(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == '|'))
        .count();
    matches!(trees.get(start), Some(TokenTree::Punct(p)) if p.as_char() == '|') && pipes == 1
}

/// Parses one comma-separated piece. A piece holding several layers means a missing comma:
/// that is reported once and the layers are still taken, so sizes are checked past it.
fn parse_piece(tokens: TokenStream, layers: &mut Vec<LayerSyntax>, errors: &mut Errors) {
    let parsed = syn::parse::Parser::parse2(
        |input: ParseStream| {
            let mut found: Vec<LayerSyntax> = Vec::new();
            while !input.is_empty() {
                if let Some(previous) = found.last() {
                    // Said where the comma belongs: right after the layer before.
                    errors.at(
                        previous.end_span(),
                        format!("expected `,` after `{}`", previous.display()),
                    );
                }
                found.push(input.parse::<LayerSyntax>()?);
            }
            Ok(found)
        },
        tokens,
    );
    match parsed {
        Ok(found) => layers.extend(found),
        Err(error) => errors.push(error),
    }
}

impl Parse for LayerSyntax {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut colon = None;
        let label = if input.peek(Ident) && input.peek2(Token![:]) && !input.peek2(Token![::]) {
            let label: Ident = input.parse()?;
            colon = Some(input.parse::<Token![:]>()?.span);
            Some(label)
        } else {
            None
        };
        if input.peek(Token![|])
            || input.peek(Token![||])
            || input.peek(Token![move])
            || input.peek(Token![async])
        {
            let pipe = input.fork().parse::<TokenTree>()?.span();
            let closure: syn::ExprClosure = input.parse()?;
            return Ok(Self {
                label,
                name: Ident::new("activation", pipe),
                args: None,
                closure: Some(Box::new(closure)),
            });
        }
        let name: Ident = input.parse().map_err(|e| {
            syn::Error::new(
                // A name with nothing after its colon: the error goes on the colon.
                if input.is_empty() {
                    colon.unwrap_or(e.span())
                } else {
                    e.span()
                },
                "expected a layer, such as `Linear(2, 8)` or `ReLU`",
            )
        })?;
        let args = if input.peek(syn::token::Paren) {
            Some(input.parse()?)
        } else {
            None
        };
        if let Some(TokenTree::Group(g)) = input.fork().parse::<Option<TokenTree>>()?
            && g.delimiter() != Delimiter::Parenthesis
        {
            return Err(syn::Error::new(
                g.span(),
                "layer arguments go in parentheses: `Linear(2, 8)`",
            ));
        }
        Ok(Self {
            label,
            name,
            args,
            closure: None,
        })
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let content;
        let paren = parenthesized!(content in input);
        let mut list = Vec::new();
        let mut errors = Errors::default();
        for piece in split_at_commas(content.parse()?) {
            match piece {
                Piece::Empty(comma) => errors.at(comma, "expected an argument before this `,`"),
                Piece::Tokens(tokens) => match syn::parse2::<Arg>(tokens) {
                    Ok(arg) => list.push(arg),
                    Err(error) => errors.push(error),
                },
            }
        }
        errors.finish(Self { paren, list })
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let arg = if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            if input.is_empty() {
                return Err(syn::Error::new(
                    name.span(),
                    format!("expected a value after `{name} =`"),
                ));
            }
            Arg::Keyword(name, Box::new(input.parse()?))
        } else if input.peek(Ident) || input.peek(Token![|]) || input.peek(Token![||]) {
            Arg::Layer(input.parse()?)
        } else if input.peek(syn::LitStr) {
            Arg::Str(input.parse()?)
        } else if input.peek(syn::LitBool) {
            Arg::Bool(input.parse()?)
        } else if input.peek(syn::token::Paren) {
            let args: Args = input.parse()?;
            Arg::Tuple(args.paren, args.list)
        } else {
            let minus: Option<Token![-]> = input.parse()?;
            // At the end of the argument the parser's error has no place of its own: it goes on
            // the minus sign, else on the whole macro call.
            let here = |e: syn::Error| minus.map_or(e.span(), |m| m.span);
            match input.parse() {
                // syn reads a literal with its own leading minus: `--1` is not a number.
                Ok(lit @ (Lit::Int(_) | Lit::Float(_)))
                    if !(minus.is_some() && lit.to_token_stream().to_string().starts_with('-')) =>
                {
                    Arg::Number(Number { minus, lit })
                }
                Ok(other) => return Err(syn::Error::new(other.span(), "expected a number")),
                Err(e) => return Err(syn::Error::new(here(e), "expected a number")),
            }
        };
        if !input.is_empty() {
            return Err(input.error("expected `,` or `)` after this argument"));
        }
        Ok(arg)
    }
}

impl ToTokens for LayerSyntax {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        if let Some(label) = &self.label {
            label.to_tokens(tokens);
            <Token![:]>::default().to_tokens(tokens);
        }
        match &self.closure {
            Some(closure) => closure.to_tokens(tokens),
            None => self.name.to_tokens(tokens),
        }
        if let Some(args) = &self.args {
            args.to_tokens(tokens);
        }
    }
}

impl ToTokens for Args {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.paren.surround(tokens, |inner| {
            for (i, arg) in self.list.iter().enumerate() {
                if i > 0 {
                    <Token![,]>::default().to_tokens(inner);
                }
                arg.to_tokens(inner);
            }
        });
    }
}

impl ToTokens for Arg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Arg::Number(number) => {
                number.minus.to_tokens(tokens);
                number.lit.to_tokens(tokens);
            }
            Arg::Str(lit) => lit.to_tokens(tokens),
            Arg::Bool(lit) => lit.to_tokens(tokens),
            Arg::Tuple(paren, list) => paren.surround(tokens, |inner| {
                for (i, arg) in list.iter().enumerate() {
                    if i > 0 {
                        <Token![,]>::default().to_tokens(inner);
                    }
                    arg.to_tokens(inner);
                }
            }),
            Arg::Keyword(name, value) => {
                name.to_tokens(tokens);
                <Token![=]>::default().to_tokens(tokens);
                value.to_tokens(tokens);
            }
            Arg::Layer(layer) => layer.to_tokens(tokens),
        }
    }
}

impl LayerSyntax {
    /// The span of the layer's last token: its closing parenthesis, or its name.
    pub fn end_span(&self) -> Span {
        if let Some(closure) = &self.closure {
            return last_span(closure.to_token_stream()).unwrap_or(self.name.span());
        }
        self.args
            .as_ref()
            .map_or(self.name.span(), |a| a.paren.span.close())
    }

    /// The layer as the user wrote it, normalised (`Linear(2, 8)`), for messages; without its
    /// name, which says where the layer is, not what it is.
    pub fn display(&self) -> String {
        if let Some(closure) = &self.closure {
            return tidy(&closure.to_token_stream().to_string());
        }
        let mut text = self.name.to_string();
        if let Some(args) = &self.args {
            let list: Vec<String> = args.list.iter().map(Arg::display).collect();
            text.push_str(&format!("({})", list.join(", ")));
        }
        text
    }
}

impl Arg {
    /// The argument as written, e.g. `-0.5` or `Linear(8, 8)`.
    pub fn display(&self) -> String {
        match self {
            Arg::Number(Number { minus, lit }) => {
                let sign = if minus.is_some() { "-" } else { "" };
                format!("{sign}{}", lit.to_token_stream())
            }
            Arg::Str(lit) => format!("{:?}", lit.value()),
            Arg::Bool(lit) => lit.value.to_string(),
            Arg::Tuple(_, list) => {
                let list: Vec<String> = list.iter().map(Arg::display).collect();
                format!("({})", list.join(", "))
            }
            Arg::Keyword(name, value) => format!("{name} = {}", value.display()),
            Arg::Layer(layer) => layer.display_labelled(),
        }
    }
}

impl LayerSyntax {
    /// Like [`display`](Self::display), with the layer's name in front where it has one.
    pub fn display_labelled(&self) -> String {
        match &self.label {
            Some(label) => format!("{label}: {}", self.display()),
            None => self.display(),
        }
    }
}

/// The span of the last token of `tokens`.
fn last_span(tokens: TokenStream) -> Option<Span> {
    tokens.into_iter().last().map(|t| match t {
        TokenTree::Group(g) => g.span_close(),
        other => other.span(),
    })
}

/// Token text as a person writes it: `|x| x * sigmoid(x)` rather than `| x | x * sigmoid (x)`.
pub fn tidy(text: &str) -> String {
    let mut out = text
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" .", ".")
        .replace(". ", ".")
        .replace(" ,", ",")
        .replace("- >", "->");
    // The closure's bars: `| x |` to `|x|`.
    if let Some(rest) = out.strip_prefix("| ")
        && let Some(end) = rest.find(" |")
    {
        out = format!("|{}|{}", &rest[..end], &rest[end + 2..]);
    }
    out
}
