//! The events `hookrelay trigger --source` sends: each provider's webhook body as the provider sends it (a Stripe
//! `event` object, a Clerk event, GitHub's and Shopify's payloads, a Slack Events API envelope), with fresh ids and
//! timestamps so that every trigger is a new event to deduplication. An event type without a fixture of its own
//! gets the provider's envelope around a minimal object.

use hookrelay_core::rfc3339;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};

/// One event type with a realistic body, for `trigger --list`.
pub struct Fixture {
    pub provider: &'static str,
    pub event_type: &'static str,
    pub about: &'static str,
}

/// Every fixture; each provider's first is its default.
pub const FIXTURES: &[Fixture] = &[
    Fixture { provider: "stripe", event_type: "invoice.paid", about: "a subscription's first invoice, paid" },
    Fixture { provider: "stripe", event_type: "payment_intent.succeeded", about: "a $20.00 card payment" },
    Fixture { provider: "stripe", event_type: "customer.created", about: "a new customer" },
    Fixture { provider: "svix", event_type: "user.created", about: "Clerk: a user signed up" },
    Fixture { provider: "svix", event_type: "user.updated", about: "Clerk: a user changed their profile" },
    Fixture { provider: "svix", event_type: "user.deleted", about: "Clerk: a user was deleted" },
    Fixture { provider: "svix", event_type: "session.created", about: "Clerk: a user signed in" },
    Fixture { provider: "github", event_type: "push", about: "one commit pushed to main" },
    Fixture {
        provider: "github",
        event_type: "issues",
        about: "an issue opened (`issues.closed` etc. set the action)",
    },
    Fixture { provider: "github", event_type: "ping", about: "the ping GitHub sends when a webhook is created" },
    Fixture { provider: "shopify", event_type: "orders/create", about: "a test order of one item" },
    Fixture { provider: "shopify", event_type: "customers/create", about: "a new customer" },
    Fixture { provider: "slack", event_type: "app_mention", about: "Events API: the app was mentioned" },
    Fixture { provider: "slack", event_type: "message", about: "Events API: a message in a channel" },
    Fixture {
        provider: "hmac-sha256",
        event_type: "test.event",
        about: "a generic `{id, type, created_at, data}` event",
    },
];

/// The default event type of a provider (its first fixture).
pub fn default_event_type(provider: &str) -> Option<&'static str> {
    FIXTURES.iter().find(|fixture| fixture.provider == provider).map(|fixture| fixture.event_type)
}

/// An event ready to be signed and sent.
#[derive(Debug)]
pub struct Event {
    /// The raw body, serialized as the provider does (Stripe pretty-prints, the others do not).
    pub body: String,
    /// The value of the provider's event-type header (`X-GitHub-Event`, `X-Shopify-Topic`), for those that have
    /// one.
    pub header_event_type: Option<String>,
    /// The id for the provider's delivery-id header (`svix-id`, `X-GitHub-Delivery`, `X-Shopify-Webhook-Id`).
    pub delivery_id: String,
}

/// Where a source reads the event type and id from the body: its `eventTypeField` and `eventIdField` options
/// (Slack and hmac-sha256 only; `None` is the provider's default).
#[derive(Debug, Default)]
pub struct BodyFields {
    pub event_type_field: Option<String>,
    pub event_id_field: Option<String>,
}

/// The event `event_type` of `provider`, fresh, at `now_ms`.
pub fn build(provider: &str, event_type: &str, fields: &BodyFields, now_ms: i64) -> anyhow::Result<Event> {
    let mut fresh = Fresh { now_ms, rng: rand::rng() };
    let event = match provider {
        "stripe" => {
            Event { body: pretty(&stripe(event_type, &mut fresh)), header_event_type: None, delivery_id: String::new() }
        }
        "svix" => Event {
            body: svix(event_type, &mut fresh).to_string(),
            header_event_type: None,
            delivery_id: fresh.id("msg_", 27),
        },
        "github" => {
            let (event, action) = github_event_and_action(event_type);
            Event {
                body: github(event, action, &mut fresh).to_string(),
                header_event_type: Some(event.to_owned()),
                delivery_id: fresh.uuid(),
            }
        }
        "shopify" => {
            let topic = shopify_topic(event_type);
            Event {
                body: shopify(&topic, &mut fresh).to_string(),
                header_event_type: Some(topic),
                delivery_id: fresh.uuid(),
            }
        }
        "slack" => Event {
            body: slack(event_type, fields, &mut fresh).to_string(),
            header_event_type: None,
            delivery_id: String::new(),
        },
        "hmac-sha256" => Event {
            body: generic(event_type, fields, &mut fresh).to_string(),
            header_event_type: None,
            delivery_id: fresh.id("evt_", 24),
        },
        other => anyhow::bail!("no fixtures for provider `{other}`"),
    };
    Ok(event)
}

/// GitHub's `X-GitHub-Event` and the body's `action` of a type written as hookrelay names it: `issues.opened` is
/// the event `issues` with the action `opened` (the name hookrelay records), `issues` alone takes the fixture's
/// default action.
pub fn github_event_and_action(event_type: &str) -> (&str, Option<&str>) {
    match event_type.split_once('.') {
        Some((event, action)) => (event, Some(action)),
        None => (event_type, None),
    }
}

/// Shopify's topic of a type written either way: `orders/create` or `orders.create` (the name hookrelay records).
pub fn shopify_topic(event_type: &str) -> String {
    if event_type.contains('/') { event_type.to_owned() } else { event_type.replacen('.', "/", 1) }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Fresh ids and timestamps.
struct Fresh {
    now_ms: i64,
    rng: rand::rngs::ThreadRng,
}

impl Fresh {
    fn now_secs(&self) -> i64 {
        self.now_ms.div_euclid(1000)
    }

    fn now_rfc3339(&self) -> String {
        rfc3339::format(self.now_secs() * 1000)
    }

    /// `prefix` and `len` random letters and digits, the shape of Stripe's (24) and Clerk's (27) ids.
    fn id(&mut self, prefix: &str, len: usize) -> String {
        let random: String = (0..len).map(|_| char::from(self.rng.sample(Alphanumeric))).collect();
        format!("{prefix}{random}")
    }

    /// `prefix` and `len` random capital letters and digits, the shape of Slack's ids.
    fn upper_id(&mut self, prefix: &str, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let random: String = (0..len).map(|_| char::from(CHARS[self.rng.random_range(0..CHARS.len())])).collect();
        format!("{prefix}{random}")
    }

    fn uuid(&mut self) -> String {
        let bits: u128 = self.rng.random();
        let hex = format!("{bits:032x}");
        format!("{}-{}-4{}-a{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
    }

    fn sha(&mut self) -> String {
        (0..20).map(|_| format!("{:02x}", self.rng.random::<u8>())).collect()
    }

    /// A large positive integer id, as GitHub and Shopify use.
    fn number(&mut self, digits: u32) -> u64 {
        self.rng.random_range(10u64.pow(digits - 1)..10u64.pow(digits))
    }
}

// ---- Stripe ----

/// The API version the events are rendered in (Stripe renders each event in the account's version).
const STRIPE_API_VERSION: &str = "2024-06-20";

/// A Stripe `event` object around `data.object`.
fn stripe(event_type: &str, fresh: &mut Fresh) -> Value {
    let customer = fresh.id("cus_", 14);
    let object = match event_type {
        "invoice.paid" => stripe_invoice(&customer, fresh),
        "payment_intent.succeeded" => stripe_payment_intent(&customer, fresh),
        "customer.created" => stripe_customer(&customer, fresh),
        other => stripe_object(other, fresh),
    };
    json!({
        "id": fresh.id("evt_", 24),
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": fresh.now_secs(),
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": fresh.id("req_", 14), "idempotency_key": fresh.uuid() },
        "type": event_type,
    })
}

fn stripe_customer(id: &str, fresh: &mut Fresh) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": fresh.now_secs(),
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "email": "jenny.rosen@example.com",
        "invoice_prefix": fresh.upper_id("", 8),
        "invoice_settings": { "custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null },
        "livemode": false,
        "metadata": {},
        "name": "Jenny Rosen",
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    })
}

fn stripe_payment_intent(customer: &str, fresh: &mut Fresh) -> Value {
    let id = fresh.id("pi_", 24);
    let secret = fresh.id("_secret_", 25);
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": 2000,
        "amount_capturable": 0,
        "amount_received": 2000,
        "capture_method": "automatic",
        "client_secret": format!("{id}{secret}"),
        "confirmation_method": "automatic",
        "created": fresh.now_secs(),
        "currency": "usd",
        "customer": customer,
        "description": null,
        "latest_charge": fresh.id("ch_", 24),
        "livemode": false,
        "metadata": {},
        "payment_method": fresh.id("pm_", 24),
        "payment_method_types": ["card"],
        "receipt_email": "jenny.rosen@example.com",
        "status": "succeeded",
    })
}

fn stripe_invoice(customer: &str, fresh: &mut Fresh) -> Value {
    let id = fresh.id("in_", 24);
    let subscription = fresh.id("sub_", 24);
    let now = fresh.now_secs();
    let month_later = now + 30 * 24 * 3600;
    let line = json!({
        "id": fresh.id("il_", 24),
        "object": "line_item",
        "amount": 2000,
        "currency": "usd",
        "description": "1 × Pro plan (at $20.00 / month)",
        "livemode": false,
        "period": { "end": month_later, "start": now },
        "price": {
            "id": fresh.id("price_", 24),
            "object": "price",
            "currency": "usd",
            "product": fresh.id("prod_", 14),
            "recurring": { "interval": "month", "interval_count": 1 },
            "type": "recurring",
            "unit_amount": 2000,
        },
        "quantity": 1,
        "subscription": subscription,
        "type": "subscription",
    });
    json!({
        "id": id,
        "object": "invoice",
        "account_country": "US",
        "amount_due": 2000,
        "amount_paid": 2000,
        "amount_remaining": 0,
        "attempt_count": 1,
        "attempted": true,
        "billing_reason": "subscription_create",
        "collection_method": "charge_automatically",
        "created": now,
        "currency": "usd",
        "customer": customer,
        "customer_email": "jenny.rosen@example.com",
        "customer_name": "Jenny Rosen",
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/acct_test/{id}"),
        "lines": {
            "object": "list",
            "data": [line],
            "has_more": false,
            "total_count": 1,
            "url": format!("/v1/invoices/{id}/lines"),
        },
        "livemode": false,
        "metadata": {},
        "number": format!("{}-0001", fresh.upper_id("", 8)),
        "paid": true,
        "payment_intent": fresh.id("pi_", 24),
        "period_end": now,
        "period_start": now,
        "status": "paid",
        "status_transitions": { "finalized_at": now, "paid_at": now },
        "subscription": subscription,
        "subtotal": 2000,
        "total": 2000,
    })
}

/// The minimal object of a Stripe event type without a fixture: `customer.subscription.deleted` carries a
/// `subscription`, `checkout.session.completed` a `checkout.session`.
fn stripe_object(event_type: &str, fresh: &mut Fresh) -> Value {
    let noun = event_type.rsplit_once('.').map_or(event_type, |(noun, _)| noun);
    let noun = noun.strip_prefix("customer.").unwrap_or(noun);
    let prefix = match noun {
        "charge" => "ch_",
        "checkout.session" => "cs_test_",
        "customer" => "cus_",
        "invoice" => "in_",
        "invoiceitem" => "ii_",
        "payment_intent" => "pi_",
        "payment_method" => "pm_",
        "payout" => "po_",
        "price" => "price_",
        "product" => "prod_",
        "refund" => "re_",
        "setup_intent" => "seti_",
        "subscription" => "sub_",
        _ => "obj_",
    };
    json!({
        "id": fresh.id(prefix, 24),
        "object": noun,
        "created": fresh.now_secs(),
        "livemode": false,
        "metadata": {},
    })
}

// ---- Svix (Clerk) ----

/// A Clerk event: `{data, object: "event", type, timestamp, instance_id}`.
fn svix(event_type: &str, fresh: &mut Fresh) -> Value {
    let user = fresh.id("user_", 27);
    let data = match event_type {
        "user.created" | "user.updated" => clerk_user(&user, event_type == "user.updated", fresh),
        "user.deleted" => json!({ "deleted": true, "id": user, "object": "user" }),
        "session.created" => json!({
            "abandon_at": fresh.now_ms + 30 * 24 * 3600 * 1000,
            "client_id": fresh.id("client_", 27),
            "created_at": fresh.now_ms,
            "expire_at": fresh.now_ms + 7 * 24 * 3600 * 1000,
            "id": fresh.id("sess_", 27),
            "last_active_at": fresh.now_ms,
            "object": "session",
            "status": "active",
            "updated_at": fresh.now_ms,
            "user_id": user,
        }),
        other => {
            let noun = other.split('.').next().unwrap_or(other);
            json!({ "id": fresh.id(&format!("{noun}_"), 27), "object": noun, "created_at": fresh.now_ms })
        }
    };
    json!({
        "data": data,
        "event_attributes": {
            "http_request": {
                "client_ip": "192.0.2.1",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
            },
        },
        "instance_id": fresh.id("ins_", 27),
        "object": "event",
        "timestamp": fresh.now_ms,
        "type": event_type,
    })
}

fn clerk_user(id: &str, updated: bool, fresh: &mut Fresh) -> Value {
    let email_id = fresh.id("idn_", 27);
    let created_at = if updated { fresh.now_ms - 3 * 24 * 3600 * 1000 } else { fresh.now_ms };
    json!({
        "backup_code_enabled": false,
        "banned": false,
        "birthday": "",
        "created_at": created_at,
        "email_addresses": [{
            "email_address": "example@example.org",
            "id": email_id,
            "linked_to": [],
            "object": "email_address",
            "verification": { "status": "verified", "strategy": "email_code" },
        }],
        "external_accounts": [],
        "external_id": null,
        "first_name": "Example",
        "has_image": false,
        "id": id,
        "image_url": "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9",
        "last_name": if updated { "Renamed" } else { "Example" },
        "last_sign_in_at": null,
        "locked": false,
        "object": "user",
        "password_enabled": true,
        "phone_numbers": [],
        "primary_email_address_id": email_id,
        "primary_phone_number_id": null,
        "primary_web3_wallet_id": null,
        "private_metadata": {},
        "public_metadata": {},
        "two_factor_enabled": false,
        "unsafe_metadata": {},
        "updated_at": fresh.now_ms,
        "username": null,
        "web3_wallets": [],
    })
}

// ---- GitHub ----

fn octocat() -> Value {
    json!({
        "login": "octocat",
        "id": 583231,
        "node_id": "MDQ6VXNlcjU4MzIzMQ==",
        "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
        "html_url": "https://github.com/octocat",
        "url": "https://api.github.com/users/octocat",
        "type": "User",
        "site_admin": false,
    })
}

fn github_repository(fresh: &Fresh) -> Value {
    json!({
        "id": 1296269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": "Hello-World",
        "full_name": "octocat/Hello-World",
        "private": false,
        "owner": octocat(),
        "html_url": "https://github.com/octocat/Hello-World",
        "description": "My first repository on GitHub!",
        "fork": false,
        "url": "https://api.github.com/repos/octocat/Hello-World",
        "created_at": "2011-01-26T19:01:12Z",
        "updated_at": fresh.now_rfc3339(),
        "pushed_at": fresh.now_secs(),
        "default_branch": "main",
        "visibility": "public",
    })
}

/// A GitHub payload: `push`, `issues` (default action `opened`), `ping`, or any other event with `repository`
/// and `sender` (and the `action` given).
fn github(event: &str, action: Option<&str>, fresh: &mut Fresh) -> Value {
    let repository = github_repository(fresh);
    match event {
        "push" => {
            let (before, after) = (fresh.sha(), fresh.sha());
            let commit = json!({
                "id": after,
                "tree_id": fresh.sha(),
                "distinct": true,
                "message": "Update README.md",
                "timestamp": fresh.now_rfc3339(),
                "url": format!("https://github.com/octocat/Hello-World/commit/{after}"),
                "author": { "name": "The Octocat", "email": "octocat@github.com", "username": "octocat" },
                "committer": { "name": "GitHub", "email": "noreply@github.com", "username": "web-flow" },
                "added": [],
                "removed": [],
                "modified": ["README.md"],
            });
            json!({
                "ref": "refs/heads/main",
                "before": before,
                "after": after,
                "repository": repository,
                "pusher": { "name": "octocat", "email": "octocat@github.com" },
                "sender": octocat(),
                "created": false,
                "deleted": false,
                "forced": false,
                "base_ref": null,
                "compare": format!("https://github.com/octocat/Hello-World/compare/{}...{}", &before[..12], &after[..12]),
                "commits": [commit.clone()],
                "head_commit": commit,
            })
        }
        "issues" => {
            let number = fresh.number(4);
            let url = format!("https://api.github.com/repos/octocat/Hello-World/issues/{number}");
            json!({
                "action": action.unwrap_or("opened"),
                "issue": {
                    "url": url,
                    "html_url": format!("https://github.com/octocat/Hello-World/issues/{number}"),
                    "id": fresh.number(10),
                    "node_id": fresh.id("I_kwDO", 16),
                    "number": number,
                    "title": "Found a bug",
                    "user": octocat(),
                    "labels": [],
                    "state": if action == Some("closed") { "closed" } else { "open" },
                    "locked": false,
                    "assignee": null,
                    "assignees": [],
                    "comments": 0,
                    "created_at": fresh.now_rfc3339(),
                    "updated_at": fresh.now_rfc3339(),
                    "closed_at": null,
                    "author_association": "OWNER",
                    "body": "I'm having a problem with this.",
                },
                "repository": repository,
                "sender": octocat(),
            })
        }
        "ping" => {
            let hook_id = fresh.number(9);
            json!({
                "zen": "Design for failure.",
                "hook_id": hook_id,
                "hook": {
                    "type": "Repository",
                    "id": hook_id,
                    "name": "web",
                    "active": true,
                    "events": ["*"],
                    "config": { "content_type": "json", "insecure_ssl": "0", "url": "https://hookrelay.example.com/ingest/github" },
                    "updated_at": fresh.now_rfc3339(),
                    "created_at": fresh.now_rfc3339(),
                    "url": format!("https://api.github.com/repos/octocat/Hello-World/hooks/{hook_id}"),
                    "test_url": format!("https://api.github.com/repos/octocat/Hello-World/hooks/{hook_id}/test"),
                    "ping_url": format!("https://api.github.com/repos/octocat/Hello-World/hooks/{hook_id}/pings"),
                    "last_response": { "code": null, "status": "unused", "message": null },
                },
                "repository": repository,
                "sender": octocat(),
            })
        }
        _ => {
            let mut body = json!({ "repository": repository, "sender": octocat() });
            if let Some(action) = action {
                body["action"] = json!(action);
            }
            body
        }
    }
}

// ---- Shopify ----

/// A Shopify payload: `orders/create`, `customers/create`, or for another topic the resource's id, GraphQL id
/// and times (`products/update` → `gid://shopify/Product/…`).
fn shopify(topic: &str, fresh: &mut Fresh) -> Value {
    let customer = shopify_customer(fresh);
    match topic {
        "orders/create" => shopify_order(customer, fresh),
        "customers/create" => customer,
        _ => {
            let id = fresh.number(13);
            json!({
                "id": id,
                "admin_graphql_api_id": format!("gid://shopify/{}/{id}", shopify_resource(topic)),
                "created_at": fresh.now_rfc3339(),
                "updated_at": fresh.now_rfc3339(),
            })
        }
    }
}

/// `inventory_items/update` → `InventoryItem`.
fn shopify_resource(topic: &str) -> String {
    let plural = topic.split('/').next().unwrap_or(topic);
    let singular = plural.strip_suffix('s').unwrap_or(plural);
    singular
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

fn shopify_customer(fresh: &mut Fresh) -> Value {
    let id = fresh.number(13);
    json!({
        "id": id,
        "email": "bob.norman@example.com",
        "created_at": fresh.now_rfc3339(),
        "updated_at": fresh.now_rfc3339(),
        "first_name": "Bob",
        "last_name": "Norman",
        "state": "disabled",
        "note": null,
        "verified_email": true,
        "tax_exempt": false,
        "phone": null,
        "currency": "USD",
        "tags": "",
        "admin_graphql_api_id": format!("gid://shopify/Customer/{id}"),
    })
}

fn shopify_order(customer: Value, fresh: &mut Fresh) -> Value {
    let id = fresh.number(13);
    let line_item = fresh.number(14);
    let product = fresh.number(10);
    let variant = fresh.number(11);
    let address = json!({
        "first_name": "Bob",
        "last_name": "Norman",
        "address1": "Chestnut Street 92",
        "city": "Louisville",
        "province": "Kentucky",
        "province_code": "KY",
        "zip": "40202",
        "country": "United States",
        "country_code": "US",
        "phone": "+1(502)-459-2181",
    });
    let line_items = json!([{
        "id": line_item,
        "admin_graphql_api_id": format!("gid://shopify/LineItem/{line_item}"),
        "name": "IPod Nano - 8GB",
        "price": "199.00",
        "product_id": product,
        "quantity": 1,
        "requires_shipping": true,
        "sku": "IPOD2008PINK",
        "taxable": true,
        "title": "IPod Nano - 8GB",
        "variant_id": variant,
        "vendor": null,
    }]);
    json!({
        "id": id,
        "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
        "buyer_accepts_marketing": false,
        "cancel_reason": null,
        "cancelled_at": null,
        "confirmation_number": fresh.upper_id("", 9),
        "confirmed": true,
        "contact_email": "bob.norman@example.com",
        "created_at": fresh.now_rfc3339(),
        "currency": "USD",
        "current_subtotal_price": "199.00",
        "current_total_price": "209.00",
        "email": "bob.norman@example.com",
        "financial_status": "paid",
        "fulfillment_status": null,
        "name": "#1001",
        "order_number": 1001,
        "presentment_currency": "USD",
        "processed_at": fresh.now_rfc3339(),
        "subtotal_price": "199.00",
        "tags": "",
        "test": true,
        "total_discounts": "0.00",
        "total_price": "209.00",
        "total_tax": "0.00",
        "updated_at": fresh.now_rfc3339(),
        "billing_address": address,
        "customer": customer,
        "line_items": line_items,
        "shipping_address": address,
        "shipping_lines": [{ "code": "Standard", "price": "10.00", "source": "shopify", "title": "Standard" }],
    })
}

// ---- Slack ----

/// A Slack Events API `event_callback` envelope around `event`. When the source reads the event type from
/// somewhere other than `type` or `event.type` (its `eventTypeField`), the type is put there too.
fn slack(event_type: &str, fields: &BodyFields, fresh: &mut Fresh) -> Value {
    let team = fresh.upper_id("T", 10);
    let bot = fresh.upper_id("U", 10);
    let user = fresh.upper_id("U", 10);
    let channel = fresh.upper_id("C", 10);
    let ts = format!("{}.{:06}", fresh.now_secs(), fresh.rng.random_range(0..1_000_000));
    let event = match event_type {
        "app_mention" => json!({
            "type": "app_mention",
            "user": user,
            "text": format!("<@{bot}> is it everything a river should be?"),
            "ts": ts,
            "client_msg_id": fresh.uuid(),
            "team": team,
            "channel": channel,
            "event_ts": ts,
        }),
        "message" => json!({
            "type": "message",
            "channel": channel,
            "user": user,
            "text": "Live long and prospect.",
            "ts": ts,
            "client_msg_id": fresh.uuid(),
            "team": team,
            "event_ts": ts,
            "channel_type": "channel",
        }),
        other => json!({ "type": other, "user": user, "event_ts": ts }),
    };
    let event_id = fresh.upper_id("Ev", 10);
    let mut body = json!({
        "token": fresh.id("", 24),
        "team_id": team,
        "api_app_id": fresh.upper_id("A", 10),
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": fresh.now_secs(),
        "authorizations": [{
            "enterprise_id": null,
            "team_id": team,
            "user_id": bot,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "is_ext_shared_channel": false,
    });
    let envelope_fields = ["type", "event.type"];
    if let Some(field) = fields.event_type_field.as_deref().filter(|field| !envelope_fields.contains(field)) {
        set_path(&mut body, field, json!(event_type));
    }
    if let Some(field) = fields.event_id_field.as_deref().filter(|field| *field != "event_id") {
        set_path(&mut body, field, json!(event_id));
    }
    body
}

// ---- hmac-sha256 ----

/// A home-grown sender's event: `{id, type, created_at, data}`, with the type and id also where the source's
/// options say to read them.
fn generic(event_type: &str, fields: &BodyFields, fresh: &mut Fresh) -> Value {
    let id = fresh.id("evt_", 24);
    let mut body = json!({
        "id": id,
        "type": event_type,
        "created_at": fresh.now_rfc3339(),
        "data": { "example": true },
    });
    if let Some(field) = fields.event_type_field.as_deref() {
        set_path(&mut body, field, json!(event_type));
    }
    if let Some(field) = fields.event_id_field.as_deref() {
        set_path(&mut body, field, json!(id));
    }
    body
}

/// Sets the value at a dot path (`a.b.c`), making objects on the way (a non-object on the way is replaced).
fn set_path(body: &mut Value, path: &str, value: Value) {
    let mut at = body;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Value::Object(object) = at else { return };
        if keys.peek().is_none() {
            object.insert(key.to_owned(), value);
            return;
        }
        at = object.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use hookrelay_core::inbound::body_field;

    use super::*;

    const NOW_MS: i64 = 1_733_620_000_123;

    fn body_of(provider: &str, event_type: &str) -> Value {
        let event = build(provider, event_type, &BodyFields::default(), NOW_MS).expect("fixture");
        serde_json::from_str(&event.body).expect("the body is JSON")
    }

    #[test]
    fn stripe_events_have_the_event_object_shape() {
        for event_type in ["invoice.paid", "payment_intent.succeeded", "customer.created", "charge.refunded"] {
            let body = body_of("stripe", event_type);
            assert!(body["id"].as_str().is_some_and(|id| id.starts_with("evt_") && id.len() == 28), "{body}");
            assert_eq!(body["object"], "event");
            assert_eq!(body["type"], event_type);
            assert_eq!(body["created"], NOW_MS / 1000);
            assert_eq!(body["livemode"], false);
            assert_eq!(body["api_version"], STRIPE_API_VERSION);
            assert!(body["data"]["object"]["id"].is_string(), "{body}");
        }
        assert_eq!(body_of("stripe", "invoice.paid")["data"]["object"]["object"], "invoice");
        assert_eq!(body_of("stripe", "invoice.paid")["data"]["object"]["status"], "paid");
        assert_eq!(body_of("stripe", "payment_intent.succeeded")["data"]["object"]["status"], "succeeded");
        assert_eq!(body_of("stripe", "charge.refunded")["data"]["object"]["object"], "charge");
        let session = body_of("stripe", "checkout.session.completed");
        assert_eq!(session["data"]["object"]["object"], "checkout.session");
        assert!(session["data"]["object"]["id"].as_str().is_some_and(|id| id.starts_with("cs_test_")));
        assert_eq!(body_of("stripe", "customer.subscription.deleted")["data"]["object"]["object"], "subscription");
    }

    #[test]
    fn every_trigger_is_a_new_event() {
        let first = build("stripe", "invoice.paid", &BodyFields::default(), NOW_MS).expect("fixture");
        let second = build("stripe", "invoice.paid", &BodyFields::default(), NOW_MS).expect("fixture");
        assert_ne!(body_field(first.body.as_bytes(), "id"), body_field(second.body.as_bytes(), "id"));
        let first = build("github", "push", &BodyFields::default(), NOW_MS).expect("fixture");
        let second = build("github", "push", &BodyFields::default(), NOW_MS).expect("fixture");
        assert_ne!(first.delivery_id, second.delivery_id);
        let first = build("slack", "message", &BodyFields::default(), NOW_MS).expect("fixture");
        let second = build("slack", "message", &BodyFields::default(), NOW_MS).expect("fixture");
        assert_ne!(body_field(first.body.as_bytes(), "event_id"), body_field(second.body.as_bytes(), "event_id"));
    }

    #[test]
    fn clerk_events_name_their_type_and_user() {
        let body = body_of("svix", "user.created");
        assert_eq!((&body["type"], &body["object"]), (&json!("user.created"), &json!("event")));
        assert!(body["data"]["id"].as_str().is_some_and(|id| id.starts_with("user_") && id.len() == 32));
        assert_eq!(body["data"]["primary_email_address_id"], body["data"]["email_addresses"][0]["id"]);
        assert_eq!(body["timestamp"], NOW_MS);
        assert_eq!(body_of("svix", "organization.created")["data"]["object"], "organization");
        let event = build("svix", "user.created", &BodyFields::default(), NOW_MS).expect("fixture");
        assert!(event.delivery_id.starts_with("msg_"));
    }

    #[test]
    fn github_types_split_into_the_header_and_the_action() {
        let push = build("github", "push", &BodyFields::default(), NOW_MS).expect("fixture");
        assert_eq!(push.header_event_type.as_deref(), Some("push"));
        let body: Value = serde_json::from_str(&push.body).expect("JSON");
        assert_eq!(body["head_commit"]["id"], body["after"]);
        assert_eq!(body["ref"], "refs/heads/main");
        assert!(body.get("action").is_none());

        let closed = build("github", "issues.closed", &BodyFields::default(), NOW_MS).expect("fixture");
        assert_eq!(closed.header_event_type.as_deref(), Some("issues"));
        assert_eq!(body_field(closed.body.as_bytes(), "action").as_deref(), Some("closed"));
        assert_eq!(body_of("github", "issues")["action"], "opened");
        assert_eq!(body_of("github", "ping")["hook"]["config"]["content_type"], "json");
        assert_eq!(body_of("github", "star.created")["action"], "created");
    }

    #[test]
    fn shopify_topics_are_written_either_way() {
        assert_eq!(shopify_topic("orders/create"), "orders/create");
        assert_eq!(shopify_topic("orders.create"), "orders/create");
        let order = build("shopify", "orders.create", &BodyFields::default(), NOW_MS).expect("fixture");
        assert_eq!(order.header_event_type.as_deref(), Some("orders/create"));
        let body: Value = serde_json::from_str(&order.body).expect("JSON");
        let id = body["id"].as_u64().expect("numeric id");
        assert_eq!(body["admin_graphql_api_id"], format!("gid://shopify/Order/{id}"));
        assert_eq!(body["line_items"][0]["quantity"], 1);
        assert_eq!(shopify_resource("inventory_items/update"), "InventoryItem");
        let product = body_of("shopify", "products/update");
        assert!(product["admin_graphql_api_id"].as_str().is_some_and(|gid| gid.starts_with("gid://shopify/Product/")));
    }

    #[test]
    fn slack_events_come_in_the_event_callback_envelope() {
        let body = body_of("slack", "app_mention");
        assert_eq!(body["type"], "event_callback");
        assert_eq!(body["event"]["type"], "app_mention");
        assert!(body["event_id"].as_str().is_some_and(|id| id.starts_with("Ev")));
        assert_eq!(body["event"]["ts"], body["event"]["event_ts"]);
        assert_eq!(body_of("slack", "reaction_added")["event"]["type"], "reaction_added");

        let custom = BodyFields { event_type_field: Some("meta.kind".into()), event_id_field: Some("meta.id".into()) };
        let event = build("slack", "message", &custom, NOW_MS).expect("fixture");
        assert_eq!(body_field(event.body.as_bytes(), "meta.kind").as_deref(), Some("message"));
        assert_eq!(body_field(event.body.as_bytes(), "meta.id"), body_field(event.body.as_bytes(), "event_id"));
    }

    #[test]
    fn generic_events_put_the_type_and_id_where_the_source_reads_them() {
        let fields =
            BodyFields { event_type_field: Some("event.name".into()), event_id_field: Some("event.id".into()) };
        let event = build("hmac-sha256", "order.shipped", &fields, NOW_MS).expect("fixture");
        assert_eq!(body_field(event.body.as_bytes(), "event.name").as_deref(), Some("order.shipped"));
        assert_eq!(body_field(event.body.as_bytes(), "event.id"), body_field(event.body.as_bytes(), "id"));
        assert_eq!(body_of("hmac-sha256", "a.b")["type"], "a.b");
    }

    #[test]
    fn every_listed_fixture_builds_and_each_provider_has_a_default() {
        for fixture in FIXTURES {
            let body = body_of(fixture.provider, fixture.event_type);
            assert!(body.is_object(), "{} {}", fixture.provider, fixture.event_type);
        }
        for provider in ["stripe", "svix", "github", "shopify", "slack", "hmac-sha256"] {
            assert!(default_event_type(provider).is_some(), "{provider}");
        }
        assert!(build("carrier-pigeon", "x", &BodyFields::default(), NOW_MS).is_err());
    }

    #[test]
    fn set_path_makes_the_objects_on_the_way() {
        let mut value = json!({"a": 1});
        set_path(&mut value, "a.b.c", json!("x"));
        set_path(&mut value, "d", json!(2));
        assert_eq!(value, json!({"a": {"b": {"c": "x"}}, "d": 2}));
    }
}
