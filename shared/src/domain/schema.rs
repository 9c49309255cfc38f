//! OpenAPI schemas of the domain's newtypes (feature `openapi`), for the HTTP API's document.
//!
//! Each newtype is parsed by its `FromStr`/`TryFrom`; its schema must accept exactly what that
//! parser accepts, or API fuzzers (which send "invalid" values expecting a 4xx) and clients
//! (which trust the patterns) are misled. The tests below hold each pattern against its parser.
//! Names and e-mails are trimmed before they are checked, so their patterns allow surrounding
//! whitespace and put the length limit on the trimmed core.

use std::borrow::Cow;

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::ids::{
    AuditId, CredentialId, DeliveryId, OrgId, ResourceId, RoleId, SessionId, TokenId, UserId,
    WebhookId,
};
use super::model::{Email, Name};
use super::net::{Ipv6Prefix, PortRange, Protocol, Region, SecurityGroupId};
use super::tier::Hours;

/// A character that is neither a control character (Rust's `char::is_control`, Unicode Cc).
const NOT_CONTROL: &str = r"[^\x00-\x1f\x7f-\x9f]";
/// Neither whitespace nor a control character.
const VISIBLE: &str = r"[^\s\x00-\x1f\x7f-\x9f]";

/// `Name`: 1 to 100 characters once trimmed, none of them a control character.
pub fn name_pattern() -> String {
    format!(r"^\s*{VISIBLE}(?:{NOT_CONTROL}{{0,98}}{VISIBLE})?\s*$")
}

/// `Email`: trimmed; a non-empty local part, one `@`, a domain with a dot that neither starts
/// nor ends it; no whitespace or control characters.
pub fn email_pattern() -> String {
    let c = r"[^@\s\x00-\x1f\x7f-\x9f]";
    let not_dot = r"[^@.\s\x00-\x1f\x7f-\x9f]";
    format!(r"^\s*{c}+@{not_dot}{c}*\.{c}*{not_dot}\s*$")
}

pub const SECURITY_GROUP_ID_PATTERN: &str = "^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})$";
pub const REGION_PATTERN: &str = "^[a-z]{2}(?:-[a-z]+){1,2}-[0-9]{1,2}$";

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

macro_rules! named_schema {
    ($ty:ty, $name:expr, $schema:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema.into()
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

named_schema!(
    Name,
    "Name",
    string("A display name: 1 to 100 characters after trimming surrounding whitespace, no control characters.")
        .pattern(Some(name_pattern()))
        .examples(["Bastion host (SSH)"])
);

named_schema!(
    Email,
    "Email",
    string("An e-mail address (at most 254 bytes); compared and stored in lower case.")
        .pattern(Some(email_pattern()))
        .examples(["dev@example.com"])
);

named_schema!(
    SecurityGroupId,
    "SecurityGroupId",
    string("An EC2 security group id: sg- followed by 8 or 17 lower-case hex digits.")
        .pattern(Some(SECURITY_GROUP_ID_PATTERN))
        .examples(["sg-0e1a2b3c4d5e6f701"])
);

named_schema!(
    Region,
    "Region",
    string("An AWS region name.")
        .pattern(Some(REGION_PATTERN))
        .examples(["eu-west-1"])
);

named_schema!(
    Hours,
    "Hours",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some("A whole number of hours between 1 and 24."))
        .minimum(Some(1))
        .maximum(Some(Hours::MAX))
);

named_schema!(
    Ipv6Prefix,
    "Ipv6Prefix",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some(
            "The prefix length an IPv6 rule opens: 128 (the address) or 64 (its network)."
        ))
        .enum_values(Some([128u8, 64]))
);

named_schema!(PortRange, "PortRange", {
    let port = |what: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some(what))
            .minimum(Some(0))
            .maximum(Some(u16::MAX))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "A protocol and an inclusive port range; fromPort must not be greater than toPort.",
        ))
        .property("protocol", Protocol::schema())
        .property("fromPort", port("First port of the range."))
        .property("toPort", port("Last port of the range."))
        .required("protocol")
        .required("fromPort")
        .required("toPort")
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ))
});

macro_rules! uuid_schema {
    ($($ty:ident: $what:literal),* $(,)?) => {$(
        named_schema!(
            $ty,
            stringify!($ty),
            string($what).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        );
    )*};
}

uuid_schema!(
    OrgId: "An organization's id.",
    UserId: "A user's id.",
    SessionId: "A session's id.",
    ResourceId: "A resource's id.",
    RoleId: "A role's id.",
    CredentialId: "A credential's id.",
    AuditId: "An audit event's id.",
    TokenId: "A personal API token's id (never its secret).",
    WebhookId: "A webhook endpoint's id.",
    DeliveryId: "A webhook delivery's id (also sent as the X-EntryGuard-Delivery header).",
);

named_schema!(
    super::webhook::WebhookUrl,
    "WebhookUrl",
    string("Where a webhook is delivered: an https:// URL of at most 2048 characters, without user name or password. Its address is checked at every delivery (no loopback, private, link-local or metadata addresses).")
        .max_length(Some(super::webhook::WebhookUrl::MAX_LEN))
        .examples(["https://hooks.slack.com/services/T000/B000/XXXX"])
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// The schema's pattern and the type's parser agree on every sample.
    #[track_caller]
    fn agree<T: FromStr>(pattern: &str, samples: &[&str]) {
        let re = regex::Regex::new(pattern).expect("pattern compiles");
        for s in samples {
            assert_eq!(
                re.is_match(s),
                s.parse::<T>().is_ok(),
                "pattern {pattern} and the parser disagree on {s:?}"
            );
        }
    }

    #[test]
    fn name_pattern_matches_the_parser() {
        let long = "n".repeat(100);
        let too_long = "n".repeat(101);
        let padded = format!("  {long}\n");
        let inner_control = "a\u{7}b";
        agree::<Name>(
            &name_pattern(),
            &[
                "a",
                "Bastion host (SSH)",
                " padded\t",
                "\n\tx\r ",
                &long,
                &too_long,
                &padded,
                "",
                "   ",
                "\n",
                inner_control,
                "\u{0}",
                "x\u{85}y",
                "emoji 🎉",
                "a  b",
                "\u{a0}nbsp\u{a0}",
            ],
        );
    }

    #[test]
    fn email_pattern_matches_the_parser() {
        agree::<Email>(
            &email_pattern(),
            &[
                "dev@example.com",
                "Dev@Example.COM",
                " dev@example.com\n",
                "a@b.c",
                "a@b..c",
                "a@.b.c",
                "a@b.c.",
                "a@bc",
                "@b.c",
                "a@@b.c",
                "a@b@c.d",
                "a b@c.d",
                "a\u{1}@b.c",
                "",
                "not-an-email",
                "ü@ß.de",
            ],
        );
    }

    #[test]
    fn security_group_and_region_patterns_match_the_parsers() {
        agree::<SecurityGroupId>(
            SECURITY_GROUP_ID_PATTERN,
            &[
                "sg-0123abcd",
                "sg-0123456789abcdef0",
                "sg-0123ABCD",
                "sg-0123abc",
                "sg-0123456789abcdef",
                "sg-",
                "0123abcd",
                " sg-0123abcd",
                "sg-0123abcg",
            ],
        );
        agree::<Region>(
            REGION_PATTERN,
            &[
                "eu-west-1",
                "us-gov-west-1",
                "ap-southeast-10",
                "eu-west",
                "eu-west-100",
                "eur-west-1",
                "EU-west-1",
                "eu--1",
                "a-b-c-d-1",
                "mars",
                "eu-west-1 ",
            ],
        );
    }

    proptest::proptest! {
        /// Random strings over the characters the rules are about.
        #[test]
        fn patterns_and_parsers_agree_on_random_strings(
            s in "[a-zA-Z0-9@. \t\n\u{0}\u{1f}\u{85}\u{a0}é-]{0,12}",
        ) {
            agree::<Name>(&name_pattern(), &[&s]);
            agree::<Email>(&email_pattern(), &[&s]);
            agree::<Region>(REGION_PATTERN, &[&s]);
        }

        #[test]
        fn security_group_pattern_agrees_on_random_ids(s in "(sg-)?[0-9a-gA-F]{0,18}") {
            agree::<SecurityGroupId>(SECURITY_GROUP_ID_PATTERN, &[&s]);
        }
    }
}
