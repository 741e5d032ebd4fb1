//! Oracle Commerce Cloud: the client's wire encoding and answer parsing, the emulator's rules
//! (tokens, the request workflow, SCIM filters, paging), the real client against the sandbox,
//! and the real binary end to end in both modes: plan, apply, poll, plan again; approvals and
//! rejections; names already taken; a token that lapses mid-run; create answers lost; faults.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use orgform::model::{NaturalKey, ProviderType, RemoteStatus, SecretRef};
use orgform::providers::oracle::{
    Id, OrganizationItem, Page, RequestItem, describe_errors, name_filters, preference,
    request_to_remote,
};
use orgform::providers::wire::{SecretEncoding, to_json};
use orgform::providers::{AnyProvider, ConnectOptions, CreateContext, Provider, ProviderError};
use orgform::sandbox::oracle::{
    self as emulator, Decided, Filter, OracleConfig, OracleData, OrgRequest, Outcome, Reply,
    Request,
};
use orgform::sandbox::{Fault, Sandbox, SandboxConfig};
use orgform::secrets::{SecretResolver, SecretString};
use orgform::spec::{SourceFile, Spec};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn occ_spec(instance_extra: &str, orgs: &str, base_url: &str) -> Spec {
    let text = format!(
        "[provider.occ]\ntype = \"oracle_commerce\"\nbase_url = \"{base_url}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\n{instance_extra}\n\n{orgs}"
    );
    Spec::load(&[SourceFile::new("occ.toml", text)]).unwrap_or_else(|e| panic!("{e:?}"))
}

fn secrets(app_key: &str) -> SecretResolver {
    let mut overrides = BTreeMap::new();
    overrides.insert(
        SecretRef::Env("OCC_APP_KEY".into()),
        SecretString::new(app_key),
    );
    SecretResolver {
        overrides,
        ..SecretResolver::default()
    }
}

const SEED_REQUEST: &str = r#"
[org.sample]
provider = "occ"
name = "Sample org"
requester_comments = "Some comments"

[org.sample.organization]
customer_type = "Standard"
tax_reference_number = "TAXUQ12345"
name = "Oracle"
description = "Some description"
external_organization_id = "EXT_ORG_1"
type = "none"
vat_reference_number = "Vat123123"
party_number = "A42RA"
duns_number = "123456789"
unique_id = "TestIDNumber"
party_id = 42

[[org.sample.organization.secondary_addresses]]
address_type = "Office Address"
address = { address1 = "600 Dexter Avenue", city = "Montgomery", state = "AL", postal_code = "36130", country = "US", company_name = "Oracle", phone_number = "973-974-1234", types = ["billing"] }

[org.sample.profile]
first_name = "First name"
last_name = "last name"
customer_contact_id = "CRMID_1"
email = "user@example.com"
receive_email = "no"
"#;

#[test]
fn the_request_body_is_the_seed_payload() {
    let spec = occ_spec("", SEED_REQUEST, "https://occ.example.com");
    let schema = ProviderType::OracleCommerce.schema();
    let body = to_json(
        schema.org,
        &spec.orgs["sample"].attrs.unpack(),
        &secrets(emulator::APP_KEY),
        SecretEncoding::Plain,
    )
    .expect("encode");
    assert_eq!(
        Value::Object(body),
        json!({
            "name": "Sample org",
            "requesterComments": "Some comments",
            "organization": {
                "customerType": "Standard",
                "taxReferenceNumber": "TAXUQ12345",
                "name": "Oracle",
                "description": "Some description",
                "externalOrganizationId": "EXT_ORG_1",
                "type": "none",
                "vatReferenceNumber": "Vat123123",
                "partyNumber": "A42RA",
                "dunsNumber": "123456789",
                "uniqueId": "TestIDNumber",
                "partyId": 42,
                "secondaryAddresses": [{
                    "addressType": "Office Address",
                    "address": {
                        "address1": "600 Dexter Avenue", "city": "Montgomery", "state": "AL",
                        "postalCode": "36130", "country": "US", "companyName": "Oracle",
                        "phoneNumber": "973-974-1234", "types": ["billing"],
                    },
                }],
            },
            "profile": {
                "firstName": "First name",
                "lastName": "last name",
                "customerContactId": "CRMID_1",
                "email": "user@example.com",
                "receiveEmail": "no",
            },
        })
    );
}

#[test]
fn the_natural_key_follows_the_mode() {
    let orgs = "[org.a]\nprovider = \"occ\"\nname = \"Request A\"\norganization = { name = \"Org A\" }\nprofile = { email = \"a@a.example\", first_name = \"A\", last_name = \"A\" }\n";
    let request = occ_spec("", orgs, "https://occ.example.com");
    assert_eq!(request.orgs["a"].natural_key.0, "Request A");
    let explicit = occ_spec("mode = \"request\"", orgs, "https://occ.example.com");
    assert_eq!(explicit.orgs["a"].natural_key.0, "Request A");
    let direct = occ_spec(
        "mode = \"direct\"",
        "[org.a]\nprovider = \"occ\"\norganization = { name = \"Org A\" }\n",
        "https://occ.example.com",
    );
    assert_eq!(direct.orgs["a"].natural_key.0, "Org A");
}

#[test]
fn numbers_are_read_as_numbers_or_strings() {
    let strings: Page<RequestItem> = serde_json::from_value(json!({
        "total": "3", "totalResults": "3", "offset": "0", "limit": "250",
        "items": [{"id": "100001", "name": "A", "status": "approved", "organization": {"id": "or-1"}}],
    }))
    .expect("strings");
    assert_eq!(strings.matching(), Some(3));
    assert_eq!(strings.items[0].id, Id("100001".into()));
    let numbers: Page<RequestItem> = serde_json::from_value(json!({
        "total": 1, "totalResults": 1, "offset": 0, "limit": 1,
        "items": [{"id": 100001, "name": "A", "status": "new", "organization": {"id": 150002}}],
    }))
    .expect("numbers");
    assert_eq!(numbers.matching(), Some(1));
    assert_eq!(numbers.items[0].id, Id("100001".into()));
    // Only `total`, or no count at all.
    let only_total: Page<OrganizationItem> =
        serde_json::from_value(json!({"total": "7", "items": []})).expect("total");
    assert_eq!(only_total.matching(), Some(7));
    let none: Page<OrganizationItem> =
        serde_json::from_value(json!({"totalResults": "", "items": [{"id": "or-1", "name": "X"}]}))
            .expect("none");
    assert_eq!(none.matching(), None);
    assert!(serde_json::from_value::<Page<OrganizationItem>>(json!({"total": "many"})).is_err());
}

#[test]
fn occ_errors_are_described() {
    let bad = StatusCode::BAD_REQUEST;
    assert_eq!(
        describe_errors(
            bad,
            r#"{"message":"Required header is missing: x-ccasset-language","status":"400","errorCode":"82001"}"#
        ),
        "82001: Required header is missing: x-ccasset-language"
    );
    assert_eq!(
        describe_errors(
            bad,
            r#"{"message":"Invalid input","errorCode":100000,"errors":[{"message":"dunsNumber should be a 9 digit number","status":"400","errorCode":"20031"}],"status":"400"}"#
        ),
        "100000: Invalid input (20031: dunsNumber should be a 9 digit number)"
    );
    assert_eq!(
        describe_errors(StatusCode::BAD_GATEWAY, "<html>proxy</html>"),
        "HTTP 502 Bad Gateway: <html>proxy</html>"
    );
}

#[test]
fn names_are_looked_up_many_per_filter_quoted_as_json() {
    let filters = name_filters(&["Acme", "Say \"hi\"", "back\\slash", "Acme", ""], 4_000);
    assert_eq!(
        filters,
        [r#"name eq "Acme" or name eq "Say \"hi\"" or name eq "back\\slash""#]
    );
    // Every filter parses with the emulator's SCIM parser and finds what it names.
    let filter = Filter::parse(&filters[0]).expect("parses");
    assert!(filter.matches(&json!({"name": "Say \"hi\""})));
    assert!(filter.matches(&json!({"name": "back\\slash"})));
    assert!(!filter.matches(&json!({"name": "Acme Corp"})));

    // Chunked by the URL budget, in order, one per filter when a name alone is too long.
    let names: Vec<String> = (0..300).map(|i| format!("Organization {i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let filters = name_filters(&refs, 4_000);
    assert!(filters.len() > 1);
    let encoded = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    assert!(filters.iter().all(|f| encoded(f).len() <= 4_000));
    let terms: usize = filters.iter().map(|f| f.matches(" eq ").count()).sum();
    assert_eq!(terms, 300);
    assert_eq!(name_filters(&["x"; 1], 5), ["name eq \"x\""]);
}

fn item(id: u64, status: &str, comments: Option<&str>) -> RequestItem {
    RequestItem {
        id: Id(id.to_string()),
        name: "Acme".into(),
        status: status.into(),
        organization: (status == "approved").then(|| orgform::providers::oracle::Ref {
            id: Some(Id("or-100009".into())),
        }),
        approver_comments: comments.map(str::to_string),
    }
}

#[test]
fn request_statuses_become_the_model_and_the_best_request_comes_first() {
    let approved = request_to_remote(&item(7, "approved", None));
    assert_eq!(approved.status, RemoteStatus::Ready);
    assert_eq!(
        approved.detail.get("organization_id").map(String::as_str),
        Some("or-100009")
    );
    assert_eq!(approved.natural_key, NaturalKey("Acme".into()));
    for phase in ["new", "review"] {
        assert_eq!(
            request_to_remote(&item(7, phase, None)).status,
            RemoteStatus::InProgress {
                phase: phase.into()
            }
        );
    }
    assert_eq!(
        request_to_remote(&item(7, "rejected", Some("no DUNS on file"))).status,
        RemoteStatus::Failed {
            code: "rejected".into(),
            message: "an administrator rejected the organization request: no DUNS on file".into()
        }
    );

    let mut items = vec![
        item(9, "rejected", None),
        item(10, "review", None),
        item(8, "approved", None),
        item(11, "rejected", None),
        item(12, "new", None),
    ];
    preference(&mut items);
    let order: Vec<&str> = items.iter().map(|i| i.id.0.as_str()).collect();
    assert_eq!(order, ["8", "12", "10", "11", "9"]);
}

// The emulator's rules, without a server.

pub(crate) const T0: u64 = 1_800_000_000_000;

pub(crate) struct Emu {
    config: OracleConfig,
    data: OracleData,
    seed: u64,
}

impl Emu {
    pub(crate) fn new(config: OracleConfig) -> Emu {
        Emu {
            config,
            data: OracleData::default(),
            seed: 1,
        }
    }

    pub(crate) fn call(
        &mut self,
        method: &str,
        path: &str,
        query: Option<&str>,
        token: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Reply {
        self.seed += 1;
        let authorization = token.map(|t| format!("Bearer {t}"));
        self.data.handle(
            &self.config,
            &Request {
                method,
                path,
                query,
                authorization: authorization.as_deref(),
                query_options: None,
                body,
            },
            "http://127.0.0.1:9",
            now,
            self.seed,
        )
    }

    pub(crate) fn login(&mut self, now: u64) -> String {
        let reply = self.call(
            "POST",
            "/ccadmin/v1/login",
            None,
            Some(emulator::APP_KEY),
            b"grant_type=client_credentials",
            now,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["access_token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    pub(crate) fn request(&mut self, body: &Value, now: u64) -> Reply {
        self.call(
            "POST",
            "/ccstore/v1/organizationRequests",
            None,
            None,
            body.to_string().as_bytes(),
            now,
        )
    }

    fn list(&mut self, path: &str, query: &str, token: &str, now: u64) -> Reply {
        self.call("GET", path, Some(query), Some(token), b"", now)
    }
}

fn request_body(name: &str, email: &str) -> Value {
    json!({
        "name": name,
        "organization": {"name": format!("{name} Inc"), "customerType": "OEM"},
        "profile": {"email": email, "firstName": "Jane", "lastName": "Doe"},
    })
}

fn q(filter: &str) -> String {
    format!(
        "q={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    )
}

#[test]
fn emulator_tokens_need_the_key_and_lapse() {
    let mut emu = Emu::new(OracleConfig {
        token_ttl: Duration::from_secs(300),
        token_max_uses: Some(2),
        ..OracleConfig::default()
    });
    for (key, body, status) in [
        (None, "grant_type=client_credentials", 401),
        (Some("wrong-key"), "grant_type=client_credentials", 401),
        (Some(emulator::APP_KEY), "grant_type=password", 400),
        (Some(emulator::APP_KEY), "", 400),
    ] {
        let reply = emu.call("POST", "/ccadmin/v1/login", None, key, body.as_bytes(), T0);
        assert_eq!(reply.status, status, "{}", reply.body);
        assert!(reply.body["errorCode"].is_string(), "{}", reply.body);
        assert_eq!(reply.body["status"], status.to_string());
        assert!(!reply.body.to_string().contains("wrong-key"));
    }
    let token = emu.login(T0);
    assert!(token.starts_with("eyJ"));
    let list = |emu: &mut Emu, token: &str, now| {
        emu.list("/ccadmin/v1/organizations", "", token, now).status
    };
    // Two uses, then it lapses.
    assert_eq!(list(&mut emu, &token, T0), 200);
    assert_eq!(list(&mut emu, &token, T0), 200);
    assert_eq!(list(&mut emu, &token, T0), 401);
    assert_eq!(list(&mut emu, "made-up", T0), 401);
    assert_eq!(
        emu.call("GET", "/ccadmin/v1/organizations", None, None, b"", T0)
            .status,
        401
    );

    // Five minutes from its issue, whatever its use; a refresh restarts the clock.
    emu.config.token_max_uses = None;
    let token = emu.login(T0);
    let refreshed = emu.call(
        "POST",
        "/ccadmin/v1/refresh",
        None,
        Some(&token),
        b"",
        T0 + 200_000,
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.body["expires_in"], 300);
    let fresh = refreshed.body["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_ne!(fresh, token);
    // The refreshed token is gone; the new one lives until 200 s + 300 s.
    assert_eq!(list(&mut emu, &token, T0 + 200_001), 401);
    assert_eq!(list(&mut emu, &fresh, T0 + 499_999), 200);
    assert_eq!(list(&mut emu, &fresh, T0 + 500_000), 401);
    let late = emu.call(
        "POST",
        "/ccadmin/v1/refresh",
        None,
        Some(&fresh),
        b"",
        T0 + 500_001,
    );
    assert_eq!(late.status, 401);
}

#[test]
fn emulator_requests_follow_the_clock_to_approval_or_rejection() {
    let mut emu = Emu::new(OracleConfig {
        new_for: Duration::from_secs(10),
        review_for: Some(Duration::from_secs(20)),
        ..OracleConfig::default()
    });
    let created = emu.request(&request_body("Acme", "jane@acme.example"), T0);
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["id"], "100001");
    assert_eq!(
        created.body["links"][0]["href"],
        "http://127.0.0.1:9/ccstore/v1/organizationRequests/100001"
    );
    let rejected = emu.request(&request_body("Please REJECT me", "x@y.example"), T0);
    assert_eq!(rejected.body["id"], "100002");

    let token = emu.login(T0);
    let get = |emu: &mut Emu, id: &str, now: u64| {
        emu.call(
            "GET",
            &format!("/ccadmin/v1/organizationRequests/{id}"),
            None,
            Some(&token),
            b"",
            now,
        )
        .body
    };
    assert_eq!(get(&mut emu, "100001", T0)["status"], "new");
    assert_eq!(get(&mut emu, "100001", T0 + 10_000)["status"], "review");
    let done = get(&mut emu, "100001", T0 + 30_000);
    assert_eq!(done["status"], "approved");
    assert_eq!(done["id"], 100_001);
    assert_eq!(done["organization"]["id"], "or-100001");
    let no = get(&mut emu, "100002", T0 + 30_000);
    assert_eq!(no["status"], "rejected");
    assert!(
        no["approverComments"]
            .as_str()
            .is_some_and(|c| c.contains("reject")),
        "{no}"
    );
    // The approval made an organization from the request's `organization`.
    let orgs = emu.list("/ccadmin/v1/organizations", "", &token, T0 + 30_000);
    assert_eq!(orgs.body["items"][0]["name"], "Acme Inc");
    assert_eq!(orgs.body["items"][0]["customerType"], "OEM");
    assert_eq!(orgs.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(emu.data.organizations(&emu.config), 1);
    let missing = get(&mut emu, "999", T0);
    assert_eq!(missing["errorCode"], "101001");
}

#[test]
fn emulator_administrators_decide_requests_once() {
    let mut emu = Emu::new(OracleConfig {
        new_for: Duration::ZERO,
        review_for: None,
        ..OracleConfig::default()
    });
    emu.request(&request_body("One", "one@x.example"), T0);
    emu.request(&request_body("Two", "two@x.example"), T0);
    let token = emu.login(T0 + 4_000_000);
    let decide = |emu: &mut Emu, id: &str, verb: &str| {
        emu.call(
            "POST",
            &format!("/ccadmin/v1/organizationRequests/{id}/{verb}"),
            None,
            Some(&token),
            br#"{"approverComments": "checked"}"#,
            T0 + 4_100_000,
        )
    };
    // With no review time, requests wait for an administrator, however long.
    let waiting = emu.list(
        "/ccadmin/v1/organizationRequests",
        "",
        &token,
        T0 + 4_000_000,
    );
    assert_eq!(waiting.body["items"][0]["status"], "review");
    assert_eq!(
        decide(&mut emu, "100001", "approve").body,
        json!({"status": "approved"})
    );
    assert_eq!(
        decide(&mut emu, "100002", "reject").body,
        json!({"status": "rejected"})
    );
    let again = decide(&mut emu, "100001", "reject");
    assert_eq!(again.status, 400);
    assert_eq!(again.body["errorCode"], "101008");
    assert_eq!(
        decide(&mut emu, "nope", "approve").body["errorCode"],
        "101000"
    );
    assert_eq!(
        emu.data.requests[1].decided,
        Some(Decided {
            approved: false,
            comments: "checked".into(),
            at_ms: T0 + 4_100_000
        })
    );
    assert_eq!(emu.data.organizations(&emu.config), 1);
}

#[test]
fn emulator_checks_requests_like_the_seed() {
    let mut emu = Emu::new(OracleConfig::default());
    let mut body = request_body("Acme", "jane@acme.example");
    let cases: Vec<(Value, &str)> = vec![
        (json!({"profile": body["profile"]}), "name"),
        (json!({"name": "A"}), "profile"),
        (
            json!({"name": "A", "profile": {"email": "a@b.example", "firstName": "A"}}),
            "profile.lastName",
        ),
        (
            {
                let mut b = body.clone();
                b["organization"]["dunsNumber"] = json!("12345678");
                b
            },
            "organization.dunsNumber",
        ),
        (
            {
                let mut b = body.clone();
                b["organization"]["customerType"] = json!("Gold");
                b
            },
            "organization.customerType",
        ),
        (
            {
                let mut b = body.clone();
                b["organization"]["type"] = json!("Company");
                b
            },
            "organization.type",
        ),
        (
            {
                let mut b = body.clone();
                b["organization"]["secondaryAddresses"] =
                    json!([{"address": {"types": "billing"}}]);
                b
            },
            "secondaryAddresses[0].address.types",
        ),
    ];
    for (bad, field) in cases {
        let reply = emu.request(&bad, T0);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert_eq!(reply.body["errorCode"], "100000");
        assert!(
            reply.body["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{field}: {}",
            reply.body
        );
    }
    assert!(emu.data.requests.is_empty());
    assert_eq!(emu.request(&body, T0).status, 200);
    // The e-mail is registered by a live request now.
    body["name"] = json!("Acme again");
    let taken = emu.request(&body, T0);
    assert_eq!(taken.status, 400);
    assert_eq!(taken.body["errorCode"], "101013");
    // Unknown fields are dropped, not kept.
    let mut extra = request_body("Extra", "extra@x.example");
    extra["shopperType"] = json!("b2b");
    extra["organization"]["secretSauce"] = json!(1);
    assert_eq!(emu.request(&extra, T0).status, 200);
    let kept = &emu.data.requests[1].fields;
    assert!(kept.get("shopperType").is_none());
    assert!(kept["organization"].get("secretSauce").is_none());
}

#[test]
fn emulator_filters_with_scim_and_pages_by_offset() {
    let mut emu = Emu::new(OracleConfig {
        new_for: Duration::ZERO,
        review_for: Some(Duration::ZERO),
        max_limit: 250,
        ..OracleConfig::default()
    });
    for i in 0..260 {
        let name = if i % 2 == 0 { "Even" } else { "Odd" };
        emu.request(&request_body(name, &format!("u{i}@x.example")), T0);
    }
    emu.request(&request_body("Say \"hi\" (ltd)", "hi@x.example"), T0);
    let token = emu.login(T0);
    let path = "/ccadmin/v1/organizationRequests";
    let page = |emu: &mut Emu, query: &str| emu.list(path, query, &token, T0 + 1).body;

    let first = page(
        &mut emu,
        &format!(
            "{}&offset=0&limit=1000",
            q("name eq \"even\" or name eq \"Odd\"")
        ),
    );
    assert_eq!(first["totalResults"], "260");
    assert_eq!(first["total"], "260");
    assert_eq!(first["limit"], "250", "the largest page is 250");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(250));
    assert!(
        first["links"][0]["href"]
            .as_str()
            .is_some_and(|h| h.starts_with("http://127.0.0.1:9/ccadmin/v1/organizationRequests?q=")),
        "{}",
        first["links"]
    );
    let second = page(
        &mut emu,
        &format!(
            "{}&offset=250&limit=250",
            q("name eq \"Even\" or name eq \"Odd\"")
        ),
    );
    assert_eq!(second["offset"], "250");
    assert_eq!(second["items"].as_array().map(Vec::len), Some(10));
    let past = page(&mut emu, &format!("{}&offset=900", q("name eq \"Odd\"")));
    assert_eq!(past["items"], json!([]));

    let count = |emu: &mut Emu, filter: &str| {
        let body = page(emu, &q(filter));
        assert!(body["totalResults"].is_string(), "{filter}: {body}");
        body["totalResults"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert_eq!(count(&mut emu, "name eq \"Say \\\"hi\\\" (ltd)\""), "1");
    assert_eq!(count(&mut emu, "name co \"HI\""), "1");
    assert_eq!(
        count(&mut emu, "name sw \"ev\" and status eq \"approved\""),
        "130"
    );
    assert_eq!(
        count(
            &mut emu,
            "(name eq \"Even\" or name eq \"Odd\") and not (name eq \"Odd\")"
        ),
        "130"
    );
    assert_eq!(count(&mut emu, "id eq 100001 or id eq \"100002\""), "2");
    assert_eq!(count(&mut emu, "organization.id pr"), "261");
    assert_eq!(count(&mut emu, "NAME EQ \"odd\""), "130");
    // Approved requests are organizations, found by the organization's name, in any case.
    let approved = emu.list(
        "/ccadmin/v1/organizations",
        &q("name eq \"EVEN INC\" or name eq \"nobody\""),
        &token,
        T0 + 1,
    );
    assert_eq!(approved.body["totalResults"], "130", "{}", approved.body);

    for bad in [
        "name eq",
        "name is \"x\"",
        "(name eq \"x\"",
        "name eq unquoted",
        "name eq \"open",
    ] {
        let reply = emu.list(path, &q(bad), &token, T0);
        assert_eq!(reply.status, 400, "{bad}");
        assert_eq!(reply.body["errorCode"], "85000", "{bad}");
    }
    let orgs = emu.list("/ccadmin/v1/organizations", &q("name eq"), &token, T0);
    assert_eq!(orgs.body["errorCode"], "100070");
    let paging = emu.list(path, "limit=ten", &token, T0);
    assert_eq!(paging.body["errorCode"], "10002");
    let sorted = page(
        &mut emu,
        &format!("{}&sort=id:desc&limit=2", q("name eq \"Odd\"")),
    );
    assert_eq!(sorted["items"][0]["id"], 100_260);
    assert_eq!(sorted["sort"], json!([{"property": "id", "order": "desc"}]));

    // Numbers as numbers, when the knob says.
    emu.config.counts_as_strings = false;
    assert_eq!(page(&mut emu, &q("name eq \"Odd\""))["totalResults"], 130);
}

#[test]
fn emulator_creates_organizations_directly() {
    let mut emu = Emu::new(OracleConfig::default());
    let token = emu.login(T0);
    let create = |emu: &mut Emu, body: Value, query: Option<&str>| {
        emu.call(
            "POST",
            "/ccadmin/v1/organizations",
            query,
            Some(&token),
            body.to_string().as_bytes(),
            T0,
        )
    };
    let made = create(
        &mut emu,
        json!({"name": "Acme", "dunsNumber": "123456789", "type": "company"}),
        None,
    );
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["id"], "or-100001");
    assert_eq!(made.body["repositoryId"], "or-100001");
    assert_eq!(made.body["active"], true);
    let id_only = create(&mut emu, json!({"name": "Acme"}), Some("expand=none"));
    assert_eq!(id_only.body, json!({"id": "or-100002"}));
    assert_eq!(
        create(&mut emu, json!({"type": "company"}), None).body["errorCode"],
        "100000"
    );
    assert_eq!(
        create(&mut emu, json!({"name": "X", "dunsNumber": "1"}), None).status,
        400
    );
    // Without a token: 401.
    let anonymous = emu.call("POST", "/ccadmin/v1/organizations", None, None, b"{}", T0);
    assert_eq!(anonymous.status, 401);
    let found = emu.call(
        "GET",
        "/ccadmin/v1/organizations/or-100002",
        None,
        Some(&token),
        b"",
        T0,
    );
    assert_eq!(found.body["name"], "Acme");
    let list = emu.list(
        "/ccadmin/v1/organizations",
        &q("name eq \"acme\""),
        &token,
        T0,
    );
    assert_eq!(list.body["totalResults"], "2", "OCC allows duplicate names");
    let gone = emu.call(
        "GET",
        "/ccadmin/v1/organizations/or-9",
        None,
        Some(&token),
        b"",
        T0,
    );
    assert_eq!(gone.body["errorCode"], "100001");
    assert_eq!(emu.data.organizations(&emu.config), 2);
}

// The real client against the sandbox on loopback.

async fn sandbox_with(
    config: OracleConfig,
    data: Option<&OracleData>,
) -> (Sandbox, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_file = dir.path().join("sandbox-data.json");
    if let Some(data) = data {
        let text = json!({ "oracle_commerce": data }).to_string();
        std::fs::write(&data_file, text).expect("write sandbox data");
    }
    let sandbox = Sandbox::start(
        "127.0.0.1:0".parse().expect("addr"),
        SandboxConfig {
            oracle: config,
            data_file: Some(data_file),
            seed: Some(7),
            ..SandboxConfig::default()
        },
    )
    .await
    .expect("sandbox starts");
    (sandbox, dir)
}

fn connect(spec: &Spec, app_key: &str) -> AnyProvider {
    let options = ConnectOptions {
        secrets: secrets(app_key),
        ..ConnectOptions::default()
    };
    AnyProvider::connect(&spec.providers["occ"], &options).expect("connect")
}

fn hits(sandbox: &Sandbox, endpoint: &str) -> u64 {
    sandbox
        .stats()
        .requests
        .get("oracle_commerce")
        .and_then(|e| e.get(endpoint))
        .copied()
        .unwrap_or(0)
}

fn held(sandbox: &Sandbox) -> u64 {
    sandbox
        .stats()
        .organizations
        .get("oracle_commerce")
        .copied()
        .unwrap_or(0)
}

const LOGIN: &str = "POST /ccadmin/v1/login";
const REFRESH: &str = "POST /ccadmin/v1/refresh";
const REQUESTS: &str = "GET /ccadmin/v1/organizationRequests";
const ORGANIZATIONS: &str = "GET /ccadmin/v1/organizations";
const CREATE_REQUEST: &str = "POST /ccstore/v1/organizationRequests";
const CREATE_ORGANIZATION: &str = "POST /ccadmin/v1/organizations";

fn request_orgs(names: &[&str]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!(
                "[org.o{i}]\nprovider = \"occ\"\nname = \"{name}\"\norganization = {{ name = \"{name} Ltd\", customer_type = \"Standard\" }}\nprofile = {{ email = \"buyer{i}@example.com\", first_name = \"Buyer\", last_name = \"No{i}\" }}\n\n"
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_sends_requests_and_follows_them_to_their_decision() {
    let config = OracleConfig {
        new_for: Duration::ZERO,
        review_for: Some(Duration::from_millis(400)),
        ..OracleConfig::default()
    };
    let (sandbox, _files) = sandbox_with(config, None).await;
    let spec = occ_spec(
        "",
        &request_orgs(&["Acme", "Please reject us", "Globex"]),
        &sandbox.base_url(),
    );
    let occ = connect(&spec, emulator::APP_KEY);
    occ.login().await.expect("login");
    let keys: Vec<NaturalKey> = spec.orgs.values().map(|o| o.natural_key.clone()).collect();
    assert!(occ.read(&keys).await.expect("read").is_empty());
    // Three names, one filter, one page.
    assert_eq!(hits(&sandbox, REQUESTS), 1);

    let acme = &spec.orgs["o0"];
    let created = occ
        .create(acme, CreateContext::default())
        .await
        .expect("create");
    assert_eq!(created.remote_id, "100001");
    assert_eq!(
        created.status,
        RemoteStatus::InProgress {
            phase: "new".into()
        }
    );
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 1);
    // Looked up first, and again now: a live request stands for the name.
    match occ.create(acme, CreateContext::default()).await {
        Err(ProviderError::AlreadyExists { message }) => {
            assert!(message.contains("100001"), "{message}")
        }
        other => panic!("wanted AlreadyExists, got {other:?}"),
    }
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 1);

    let rejected = occ
        .create(&spec.orgs["o1"], CreateContext::default())
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let approved = occ
        .settle(acme, Some(&created.remote_id))
        .await
        .expect("settle")
        .expect("found");
    assert_eq!(approved.status, RemoteStatus::Ready);
    assert_eq!(
        approved.detail.get("organization_id").map(String::as_str),
        Some("or-100001")
    );
    let failed = occ
        .settle(&spec.orgs["o1"], Some(&rejected.remote_id))
        .await
        .expect("settle")
        .expect("found");
    match failed.status {
        RemoteStatus::Failed { code, message } => {
            assert_eq!(code, "rejected");
            assert!(message.contains("reject"), "{message}");
        }
        other => panic!("wanted Failed, got {other:?}"),
    }
    // A rejected request does not stand in the way of asking again (and the e-mail is free).
    let again = occ
        .create(&spec.orgs["o1"], CreateContext::default())
        .await
        .expect("ask again");
    assert_eq!(again.remote_id, "100003");
    let reality = occ.read(&keys).await.expect("read");
    let both = reality.find(&spec.orgs["o1"].natural_key);
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].remote_id, "100003", "the live request comes first");
    assert_eq!(held(&sandbox), 1);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_pages_through_many_requests_with_counts_as_strings_or_numbers() {
    let mut data = OracleData::default();
    data.requests = (0..520)
        .map(|i| OrgRequest {
            id: 100_001 + i,
            name: if i < 510 {
                "Many".into()
            } else {
                format!("Other {i}")
            },
            fields: serde_json::Map::new(),
            created_ms: T0,
            organization_id: format!("or-{}", 100_001 + i),
            profile_id: format!("{}", 200_001 + i),
            outcome: Outcome::Approved,
            decided: None,
        })
        .collect();
    data.last_request_id = 520;
    data.last_organization_id = 520;
    for counts_as_strings in [true, false] {
        let (sandbox, _files) = sandbox_with(
            OracleConfig {
                counts_as_strings,
                ..OracleConfig::default()
            },
            Some(&data),
        )
        .await;
        let spec = occ_spec(
            "",
            &request_orgs(&["Many", "Other 515", "Nobody"]),
            &sandbox.base_url(),
        );
        let occ = connect(&spec, emulator::APP_KEY);
        let keys: Vec<NaturalKey> = spec.orgs.values().map(|o| o.natural_key.clone()).collect();
        let reality = occ.read(&keys).await.expect("read");
        assert_eq!(reality.find(&keys[0]).len(), 510);
        assert_eq!(reality.find(&keys[1]).len(), 1);
        assert!(reality.find(&keys[2]).is_empty());
        // 511 matches: pages of 250, 250 and 11.
        assert_eq!(
            hits(&sandbox, REQUESTS),
            3,
            "counts as strings: {counts_as_strings}"
        );
        assert_eq!(hits(&sandbox, LOGIN), 1);
        sandbox.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_refreshes_a_token_before_it_lapses_and_logs_in_again_when_refused() {
    let (sandbox, _files) = sandbox_with(
        OracleConfig {
            token_ttl: Duration::from_secs(2),
            ..OracleConfig::default()
        },
        None,
    )
    .await;
    let spec = occ_spec("", &request_orgs(&["Acme"]), &sandbox.base_url());
    let keys: Vec<NaturalKey> = spec.orgs.values().map(|o| o.natural_key.clone()).collect();
    let occ = connect(&spec, emulator::APP_KEY);
    occ.read(&keys).await.expect("read");
    assert_eq!((hits(&sandbox, LOGIN), hits(&sandbox, REFRESH)), (1, 0));
    // Three quarters of its two seconds: refreshed before use, not refused.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    occ.read(&keys).await.expect("read");
    assert_eq!((hits(&sandbox, LOGIN), hits(&sandbox, REFRESH)), (1, 1));
    // Lapsed entirely: a new login.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    occ.read(&keys).await.expect("read");
    assert_eq!((hits(&sandbox, LOGIN), hits(&sandbox, REFRESH)), (2, 1));
    assert_eq!(hits(&sandbox, REQUESTS), 3, "no request was refused");
    sandbox.shutdown().await.expect("shutdown");

    // A token the server drops early (one use each): a 401, one login, the call sent again.
    let (sandbox, _files) = sandbox_with(
        OracleConfig {
            token_max_uses: Some(1),
            ..OracleConfig::default()
        },
        None,
    )
    .await;
    let again = occ_spec("", &request_orgs(&["Acme"]), &sandbox.base_url());
    let occ = connect(&again, emulator::APP_KEY);
    occ.read(&keys).await.expect("read");
    occ.read(&keys).await.expect("read");
    assert_eq!(hits(&sandbox, LOGIN), 2);
    assert_eq!(hits(&sandbox, REQUESTS), 3, "one refused, sent again");
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_reports_a_refused_application_key_without_it() {
    let (sandbox, _files) = sandbox_with(OracleConfig::default(), None).await;
    let spec = occ_spec("", &request_orgs(&["Acme"]), &sandbox.base_url());
    let occ = connect(&spec, "s3cret-wrong-occ-app-key");
    let error = occ.login().await.expect_err("refused");
    let text = error.to_string();
    assert!(
        matches!(error, ProviderError::Unauthorized { .. }),
        "{text}"
    );
    assert!(text.contains("application key"), "{text}");
    assert!(!text.contains("s3cret-wrong-occ-app-key"), "{text}");
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_creates_organizations_directly_and_refuses_what_does_not_fit_the_mode() {
    let (sandbox, _files) = sandbox_with(OracleConfig::default(), None).await;
    let orgs = r#"
[org.acme]
provider = "occ"
organization = { name = "Acme Corp", customer_type = "Enterprise", type = "company", duns_number = "123456789" }
"#;
    let spec = occ_spec("mode = \"direct\"", orgs, &sandbox.base_url());
    let occ = connect(&spec, emulator::APP_KEY);
    let created = occ
        .create(&spec.orgs["acme"], CreateContext::default())
        .await
        .expect("create");
    assert_eq!(created.remote_id, "or-100001");
    assert_eq!(created.status, RemoteStatus::Ready);
    assert_eq!(created.natural_key.0, "Acme Corp");
    assert_eq!(hits(&sandbox, CREATE_ORGANIZATION), 1);
    assert_eq!(hits(&sandbox, ORGANIZATIONS), 1, "looked up first");
    match occ
        .create(&spec.orgs["acme"], CreateContext::default())
        .await
    {
        Err(ProviderError::AlreadyExists { message }) => {
            assert!(message.contains("or-100001"), "{message}")
        }
        other => panic!("wanted AlreadyExists, got {other:?}"),
    }
    let reality = occ
        .read(&[spec.orgs["acme"].natural_key.clone()])
        .await
        .expect("read");
    assert_eq!(reality.len(), 1);
    assert_eq!(held(&sandbox), 1);

    // What does not fit the mode never reaches the client: the specs are refused when loaded
    // (a request on a direct instance; an organization without a request on a request one).
    let load = |instance_extra: &str, orgs: &str| {
        let text = format!(
            "[provider.occ]\ntype = \"oracle_commerce\"\nbase_url = \"{}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\n{instance_extra}\n\n{orgs}",
            sandbox.base_url()
        );
        match Spec::load(&[SourceFile::new("occ.toml", text)]) {
            Ok(_) => panic!("loaded specs that do not fit the mode"),
            Err(e) => format!("{e:?}"),
        }
    };
    let request = "[org.request]\nprovider = \"occ\"\nname = \"A request\"\norganization = { name = \"Request Corp\" }\nprofile = { email = \"r@r.example\", first_name = \"R\", last_name = \"R\" }\n";
    assert!(load("mode = \"direct\"", request).contains("mode = \\\"direct\\\""));
    let plain = "[org.plain]\nprovider = \"occ\"\norganization = { name = \"Plain\" }\n";
    assert!(load("", plain).contains("needs its `name`"));
    sandbox.shutdown().await.expect("shutdown");
}

// End to end: the real binary against the sandbox on loopback.

/// Values of the secrets these runs export: none may appear in output, logs or state.
const E2E_SECRETS: &[(&str, &str)] = &[("OCC_APP_KEY", emulator::APP_KEY)];

/// The start of every token the emulator hands out: no token may appear either.
const TOKEN_SHAPE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.";

use crate::harness::Run;

/// Runs the binary on `dir`'s specs and state, with the test secrets exported; nothing secret
/// may show in what it prints.
fn orgform(dir: &Path, args: &[&str]) -> Run {
    let run = crate::harness::run_on(dir, args, E2E_SECRETS);
    assert_clean("stdout", &run.stdout);
    assert_clean("stderr", &run.stderr);
    run
}

fn assert_clean(what: &str, text: &str) {
    for (name, value) in E2E_SECRETS {
        assert!(
            !text.contains(value),
            "{what} leaks the value of {name}:\n{text}"
        );
    }
    assert!(!text.contains(TOKEN_SHAPE), "{what} shows a token:\n{text}");
}

/// Apply, polling fast (the emulator decides in a few hundred milliseconds here).
const APPLY: &[&str] = &["apply", "--auto-approve", "--poll-interval", "100ms"];

async fn start(oracle: OracleConfig, tweak: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let mut config = SandboxConfig {
        oracle,
        seed: Some(20_261_124),
        ..SandboxConfig::default()
    };
    tweak(&mut config);
    Sandbox::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("sandbox starts")
}

/// An emulator that decides each request as soon as it is made, like a site that approves
/// registrations automatically (and like the embedded sandbox): apply's one look after each
/// create records the decision.
fn at_once() -> OracleConfig {
    OracleConfig {
        new_for: Duration::ZERO,
        review_for: Some(Duration::ZERO),
        ..OracleConfig::default()
    }
}

fn quick() -> OracleConfig {
    OracleConfig {
        new_for: Duration::from_millis(100),
        review_for: Some(Duration::from_millis(200)),
        ..OracleConfig::default()
    }
}

fn write_specs(dir: &Path, sandbox: &Sandbox, instance_extra: &str, orgs: &str) {
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).expect("mkdir");
    let text = format!(
        "[provider.occ]\ntype = \"oracle_commerce\"\nbase_url = \"{}\"\napp_key = {{ env = \"OCC_APP_KEY\" }}\n{instance_extra}\n\n{orgs}",
        sandbox.base_url()
    );
    std::fs::write(specs.join("occ.toml"), text).expect("write specs");
}

fn state_of(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("state.json")).expect("state written");
    assert_clean("state", &text);
    serde_json::from_str(&text).expect("state json")
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_requests_plan_apply_refresh_then_no_changes() {
    let sandbox = start(quick(), |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(
        dir.path(),
        &sandbox,
        "",
        &request_orgs(&["Acme", "Globex", "Please reject Initech"]),
    );

    let plan = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    crate::harness::assert_run_snapshot!("plan_three_requests", plan, dir.path());
    assert_eq!((hits(&sandbox, LOGIN), hits(&sandbox, REQUESTS)), (1, 1));

    // Apply asks and returns: the requests wait for their decision, recorded by a later run.
    let apply = orgform(dir.path(), APPLY).expect(0);
    assert!(apply.stderr.contains("3 pending"), "{}", apply.stderr);
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 3);
    std::thread::sleep(Duration::from_millis(400));
    let refresh = orgform(dir.path(), &["refresh"]).expect(0);
    assert!(refresh.stderr.contains("rejected"), "{}", refresh.stderr);
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 3);
    assert_eq!(held(&sandbox), 2);
    let state = state_of(dir.path());
    for address in ["o0", "o1"] {
        let record = &state["orgs"][address];
        assert_eq!(record["status"], "created", "{record}");
        assert!(
            record["remote_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("1000")),
            "{record}"
        );
        assert!(
            record["detail"]["organization_id"]
                .as_str()
                .is_some_and(|i| i.starts_with("or-")),
            "{record}"
        );
    }
    assert_eq!(state["orgs"]["o2"]["status"], "failed");
    assert_eq!(state["orgs"]["o2"]["error"]["code"], "rejected");

    // The rejection is shown, never asked again blindly: the declaration must change first.
    let again = orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(2);
    assert!(again.stdout.contains("rejected"), "{}", again.stdout);
    assert!(again.stdout.contains("2 unchanged"), "{}", again.stdout);
    orgform(dir.path(), APPLY).expect(0);
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 3);
    let loud = orgform(dir.path(), &["plan", "-vv"]).expect(0);
    assert!(loud.stderr.contains("DEBUG"), "{}", loud.stderr);

    // Without the failed one, nothing is left to do.
    write_specs(dir.path(), &sandbox, "", &request_orgs(&["Acme", "Globex"]));
    orgform(dir.path(), &["forget", "o2"]).expect(0);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_direct_mode_creates_and_adopts_organizations() {
    let sandbox = start(OracleConfig::default(), |_| {}).await;
    // Someone made one by hand already.
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/ccadmin/v1/login", sandbox.base_url()))
        .bearer_auth(emulator::APP_KEY)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
    let by_hand: Value = http
        .post(format!("{}/ccadmin/v1/organizations", sandbox.base_url()))
        .bearer_auth(login["access_token"].as_str().expect("token"))
        .json(&json!({"name": "Globex"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("org");
    let dir = tempfile::tempdir().expect("tempdir");
    let orgs = r#"
[org.acme]
provider = "occ"
organization = { name = "Acme Corp", type = "company" }

[org.globex]
provider = "occ"
organization = { name = "Globex" }

[org.initech]
provider = "occ"
organization = { name = "Initech", customer_type = "Supplier" }
"#;
    write_specs(dir.path(), &sandbox, "mode = \"direct\"", orgs);
    let plan = orgform(dir.path(), &["plan"]).expect(0);
    crate::harness::assert_run_snapshot!("plan_direct_mode_adopts", plan, dir.path());
    let apply = orgform(dir.path(), APPLY).expect(0);
    assert!(apply.stderr.contains("2 created"), "{}", apply.stderr);
    assert_eq!(
        hits(&sandbox, CREATE_ORGANIZATION),
        3,
        "one by hand, two by orgform"
    );
    assert_eq!(held(&sandbox), 3);
    let state = state_of(dir.path());
    assert_eq!(state["orgs"]["globex"]["remote_id"], by_hand["id"]);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_token_dropped_mid_run_is_renewed() {
    // Each token serves one call: the read uses the first, and every create after that finds
    // its token refused, logs in again and resends (the apply's read answered for the creates,
    // so no look-up comes between them).
    let sandbox = start(
        OracleConfig {
            token_max_uses: Some(1),
            ..OracleConfig::default()
        },
        |_| {},
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let orgs = "[org.a]\nprovider = \"occ\"\norganization = { name = \"A\" }\n\n[org.b]\nprovider = \"occ\"\norganization = { name = \"B\" }\n\n[org.c]\nprovider = \"occ\"\norganization = { name = \"C\" }\n";
    write_specs(
        dir.path(),
        &sandbox,
        "mode = \"direct\"\nmax_concurrency = 1",
        orgs,
    );
    orgform(dir.path(), APPLY).expect(0);
    assert_eq!(held(&sandbox), 3);
    assert!(
        hits(&sandbox, LOGIN) > 2,
        "logged in again: {:?}",
        sandbox.stats()
    );
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_lost_create_answers_are_settled_by_look_up() {
    // Every create is committed, then its answer is lost (HTTP 502): orgform must look each
    // name up and follow what it finds, never send the request again.
    let sandbox = start(
        OracleConfig {
            lose_create_answers: 3,
            ..at_once()
        },
        |_| {},
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(
        dir.path(),
        &sandbox,
        "",
        &request_orgs(&["Acme", "Globex", "Initech"]),
    );
    orgform(dir.path(), APPLY).expect(0);
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 3);
    assert_eq!(held(&sandbox), 3);
    let state = state_of(dir.path());
    for address in ["o0", "o1", "o2"] {
        assert_eq!(state["orgs"][address]["status"], "created", "{state}");
    }
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_injected_faults_never_duplicate() {
    let sandbox = start(quick(), |c| {
        c.fault_rate = 0.3;
        c.faults = vec![
            Fault::TooManyRequests,
            Fault::TooManyRequestsRetryAfter,
            Fault::InternalError,
            Fault::Unavailable,
            Fault::Reset,
        ];
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(
        dir.path(),
        &sandbox,
        "",
        &request_orgs(&["Acme", "Globex", "Initech", "Umbrella"]),
    );
    // A run may leave a request pending when its look-ups keep failing; the next run settles it.
    let mut runs = 0;
    loop {
        runs += 1;
        let run = orgform(dir.path(), APPLY);
        if run.code == 0 || runs == 5 {
            run.expect(0);
            break;
        }
    }
    let faults: u64 = sandbox
        .stats()
        .faults
        .get("oracle_commerce")
        .map_or(0, |f| f.values().sum());
    assert!(faults > 0, "faults were injected");
    // Four requests, each asked once: no fault made a duplicate.
    assert_eq!(
        sandbox.stats().organizations["oracle_commerce"],
        4,
        "{:?}",
        sandbox.stats()
    );
    // Still under fire, later runs settle whatever is left pending and ask nothing twice.
    let mut settled = false;
    for _ in 0..4 {
        if orgform(dir.path(), &["plan", "--detailed-exitcode"]).code == 0 {
            settled = true;
            break;
        }
        orgform(dir.path(), APPLY);
    }
    assert!(settled, "{}", state_of(dir.path()));
    assert_eq!(sandbox.stats().organizations["oracle_commerce"], 4);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_refused_request_is_explained_and_not_recorded() {
    let sandbox = start(quick(), |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Two requests with one requester's e-mail: OCC registers a profile once.
    let orgs = r#"
[org.first]
provider = "occ"
name = "First"
profile = { email = "buyer@example.com", first_name = "B", last_name = "B" }

[org.second]
provider = "occ"
name = "Second"
profile = { email = "buyer@example.com", first_name = "B", last_name = "B" }
"#;
    write_specs(dir.path(), &sandbox, "max_concurrency = 1", orgs);
    let run = orgform(dir.path(), APPLY).expect(1);
    assert!(run.stderr.contains("101013"), "{}", run.stderr);
    assert!(run.stderr.contains("already registered"), "{}", run.stderr);
    let state = state_of(dir.path());
    let recorded: Vec<&String> = state["orgs"].as_object().expect("orgs").keys().collect();
    assert_eq!(
        recorded.len(),
        1,
        "only the accepted request is recorded: {state}"
    );
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 2);
    sandbox.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_request_waiting_for_approval_is_settled_by_a_later_run() {
    let sandbox = start(
        OracleConfig {
            new_for: Duration::ZERO,
            review_for: None,
            ..OracleConfig::default()
        },
        |_| {},
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, "", &request_orgs(&["Acme"]));
    let run = orgform(
        dir.path(),
        &[
            "apply",
            "--auto-approve",
            "--poll-interval",
            "100ms",
            "--settle-timeout",
            "300ms",
        ],
    )
    .expect(0);
    assert!(run.stderr.contains("review"), "{}", run.stderr);
    assert_eq!(state_of(dir.path())["orgs"]["o0"]["status"], "pending");
    let plan = orgform(dir.path(), &["plan"]).expect(0);
    assert!(plan.stdout.contains("pending"), "{}", plan.stdout);

    // An administrator approves it; the next apply records the organization.
    approve_as_admin(&sandbox, 100001).await;
    orgform(dir.path(), APPLY).expect(0);
    let state = state_of(dir.path());
    assert_eq!(state["orgs"]["o0"]["status"], "created");
    assert_eq!(
        state["orgs"]["o0"]["detail"]["organization_id"],
        "or-100001"
    );
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 1);
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    sandbox.shutdown().await.expect("shutdown");
}

#[test]
fn e2e_the_example_spec_runs_against_the_embedded_sandbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/oracle.toml");
    std::fs::copy(example, dir.path().join("specs/oracle.toml")).expect("copy example");
    // No OCC_APP_KEY in this environment: the embedded sandbox supplies its own.
    let run = |args: &[&str]| {
        crate::harness::orgform(dir.path())
            .args(args)
            .env_remove("OCC_APP_KEY")
            .run()
    };
    let plan = run(&["plan", "--sandbox", "--detailed-exitcode"]).expect(2);
    crate::harness::assert_run_snapshot!("example_plan", plan, dir.path());
    let apply = run(&[
        "apply",
        "--sandbox",
        "--auto-approve",
        "--poll-interval",
        "200ms",
    ])
    .expect(0);
    assert!(apply.stderr.contains("3 created"), "{}", apply.stderr);
    run(&["plan", "--sandbox", "--detailed-exitcode"]).expect(0);
}

/// Approves organization request `id` as an administrator would, through the admin API.
async fn approve_as_admin(sandbox: &Sandbox, id: u64) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/ccadmin/v1/login", sandbox.base_url()))
        .bearer_auth(emulator::APP_KEY)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
    let approved = http
        .post(format!(
            "{}/ccadmin/v1/organizationRequests/{id}/approve",
            sandbox.base_url()
        ))
        .bearer_auth(login["access_token"].as_str().expect("token"))
        .json(&json!({"approverComments": "welcome"}))
        .send()
        .await
        .expect("approve");
    assert_eq!(approved.status(), 200);
}

/// Issue 13: a real request waits for an administrator, so the emulator's default leaves it in
/// review, and apply records it `pending` and returns at once instead of polling for up to 15
/// minutes; a later plan shows it settled and `refresh` records it.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_apply_leaves_requests_pending_for_an_administrator_without_polling() {
    let sandbox = start(OracleConfig::default(), |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_specs(dir.path(), &sandbox, "", &request_orgs(&["Acme", "Globex"]));

    let started = std::time::Instant::now();
    // Today's default settle timeout (15 minutes) and poll interval: nothing shortened.
    let apply = orgform(dir.path(), &["apply", "--auto-approve"]).expect(0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "apply waited {:?}",
        started.elapsed()
    );
    assert!(apply.stderr.contains("pending"), "{}", apply.stderr);
    let state = state_of(dir.path());
    for address in ["o0", "o1"] {
        assert_eq!(state["orgs"][address]["status"], "pending", "{state}");
    }
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 2);
    assert_eq!(held(&sandbox), 0, "none approved yet");
    // The plan's read, the client's look before each create, and at most one look after each:
    // no poll storm.
    let reads = hits(&sandbox, REQUESTS);
    assert!(reads <= 1 + 2 + 2, "{reads} reads: {:?}", sandbox.stats());

    // Nobody approved yet: still pending, nothing sent again.
    std::thread::sleep(Duration::from_millis(1600));
    let plan = orgform(dir.path(), &["plan"]).expect(0);
    assert!(plan.stdout.contains("2 pending"), "{}", plan.stdout);

    approve_as_admin(&sandbox, 100_001).await;
    approve_as_admin(&sandbox, 100_002).await;
    assert_eq!(held(&sandbox), 2);
    let plan = orgform(dir.path(), &["plan"]).expect(0);
    assert!(plan.stdout.contains("2 to adopt"), "{}", plan.stdout);
    assert!(plan.stdout.contains("pending in state"), "{}", plan.stdout);
    orgform(dir.path(), &["refresh"]).expect(0);
    let state = state_of(dir.path());
    for address in ["o0", "o1"] {
        assert_eq!(state["orgs"][address]["status"], "created", "{state}");
    }
    orgform(dir.path(), &["plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(hits(&sandbox, CREATE_REQUEST), 2);
    sandbox.shutdown().await.expect("shutdown");
}

/// Starts the real `orgform sandbox` with `args`; gives the child (killed when dropped) and its
/// base URL.
pub(crate) fn serve(args: &[&str]) -> (crate::harness::Spawned, String) {
    use std::io::{BufRead, BufReader};
    let mut all = vec!["sandbox", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut child = crate::harness::orgform(Path::new(".")).args(&all).spawn();
    // The address is on stdout; the logs on stderr, drained so the child never blocks on them.
    let mut stderr = child.take_stderr();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let mut stdout = BufReader::new(child.take_stdout());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            drop(child);
            panic!("the sandbox exited: {seen}");
        }
        seen.push_str(&line);
        if let Some(rest) = line.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().expect("url").to_string();
            // Keep draining, so that the child never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
            return (child, url);
        }
    }
}

/// Asks for one organization and gives the status the admin API reports after `wait`.
async fn status_after(base_url: &str, wait: Duration) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base_url}/ccstore/v1/organizationRequests"))
        .json(&request_body("Acme", "buyer@example.com"))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("JSON");
    let id = match &created["id"] {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    };
    tokio::time::sleep(wait).await;
    let login: Value = http
        .post(format!("{base_url}/ccadmin/v1/login"))
        .bearer_auth(emulator::APP_KEY)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
    let request: Value = http
        .get(format!("{base_url}/ccadmin/v1/organizationRequests/{id}"))
        .bearer_auth(login["access_token"].as_str().expect("token"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("JSON");
    request["status"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_the_sandbox_waits_for_an_administrator_unless_told_to_approve() {
    let (manual, url) = serve(&[]);
    let status = status_after(&url, Duration::from_millis(1800)).await;
    drop(manual);
    assert_eq!(status, "review");

    let (auto, url) = serve(&["--occ-auto-approve", "300ms"]);
    let status = status_after(&url, Duration::from_millis(600)).await;
    drop(auto);
    assert_eq!(status, "approved");
}
