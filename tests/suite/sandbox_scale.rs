//! The emulators among many organizations: a look-up by natural key (or id) finds the one
//! asked for, not a neighbour, and a list read page by page gives every organization once, in
//! order, also after a create between two reads. The emulators index what look-ups and lists
//! use (so each costs O(page), not O(all)); these tests hold the answers to what a scan gives.

use orgform::sandbox::SandboxConfig;
use orgform::sandbox::commvault::{CommvaultConfig, Endpoint as CvEndpoint};
use orgform::sandbox::neoncrm::{Endpoint, NeonConfig, NeonData};
use orgform::sandbox::oracle::OracleConfig;
use orgform::sandbox::salesforce::SalesforceConfig;
use serde_json::{Value, json};

/// Organizations each test creates before it looks one up.
const MANY: usize = 300;

#[test]
fn neoncrm_finds_one_name_among_many_and_pages_through_all() {
    use crate::provider_neoncrm::{NeonEmulator, call, list, session};
    let mut emu = NeonEmulator::new(NeonConfig::default(), NeonData::default(), Some(3));
    let sid = session(&mut emu);
    for i in 0..MANY {
        let name = format!("Org {i:04}");
        let created = call(
            &mut emu,
            Endpoint::CreateOrganizationAccount,
            &[
                ("userSessionId", sid.as_str()),
                ("organizationAccount.organizationName", name.as_str()),
            ],
        );
        assert_eq!(created["operationResult"], "SUCCESS", "{created}");
    }
    let ids_named = |emu: &mut NeonEmulator, names: &[&str], page: u32| -> (Value, Vec<String>) {
        let answer = call(emu, Endpoint::ListAccounts, &list(&sid, names, page));
        assert_eq!(answer["operationResult"], "SUCCESS", "{answer}");
        let rows = match &answer["searchResults"]["nameValuePairs"] {
            Value::Array(rows) => rows.clone(),
            Value::Null => Vec::new(),
            one => vec![one.clone()],
        };
        let names = rows
            .iter()
            .map(|row| {
                row["nameValuePair"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"] == "Organization Name")
                    .map_or(String::new(), |p| p["value"].as_str().unwrap_or("").into())
            })
            .collect();
        (answer["page"].clone(), names)
    };
    let (page, found) = ids_named(&mut emu, &["org 0137"], 1);
    assert_eq!(found, ["Org 0137"], "EQUAL without case finds the one");
    assert_eq!(page["totalResults"], 1);
    let (_, found) = ids_named(&mut emu, &["Org 0002", "Org 0299", "Org 9999"], 1);
    assert_eq!(
        found,
        ["Org 0002", "Org 0299"],
        "IN_RANGE finds each, in id order"
    );

    // Every organization (NOT_BLANK), page by page, with a create between two pages.
    let all = |emu: &mut NeonEmulator, page: u32| {
        let page = page.to_string();
        let params = [
            ("userSessionId", sid.as_str()),
            ("outputfields.idnamepair.name", "Account ID"),
            ("outputfields.idnamepair.name", "Organization Name"),
            ("searches.search.key", "Organization Name"),
            ("searches.search.searchOperator", "NOT_BLANK"),
            ("searches.search.value", ""),
            ("searches.search.key", "Account Type"),
            ("searches.search.searchOperator", "EQUAL"),
            ("searches.search.value", "Organization"),
            ("page.currentPage", page.as_str()),
            ("page.pageSize", "200"),
            ("page.sortColumn", "Account ID"),
            ("page.sortDirection", "ASC"),
        ];
        let answer = call(emu, Endpoint::ListAccounts, &params);
        let rows = answer["searchResults"]["nameValuePairs"]
            .as_array()
            .map_or(0, Vec::len);
        (answer["page"]["totalResults"].as_u64(), rows)
    };
    assert_eq!(all(&mut emu, 1), (Some(MANY as u64), 200));
    let created = call(
        &mut emu,
        Endpoint::CreateOrganizationAccount,
        &[
            ("userSessionId", sid.as_str()),
            ("organizationAccount.organizationName", "Late Org"),
        ],
    );
    assert_eq!(created["operationResult"], "SUCCESS");
    assert_eq!(
        all(&mut emu, 2),
        (Some(MANY as u64 + 1), MANY + 1 - 200),
        "a create between two pages is in the next one"
    );
    let (_, found) = ids_named(&mut emu, &["late org"], 1);
    assert_eq!(found, ["Late Org"]);
}

#[test]
fn neoncrm_refuses_a_taken_username_among_many() {
    use crate::provider_neoncrm::{NeonEmulator, call, session};
    let mut emu = NeonEmulator::new(NeonConfig::default(), NeonData::default(), Some(4));
    let sid = session(&mut emu);
    let create = |emu: &mut NeonEmulator, name: &str, username: &str| {
        call(
            emu,
            Endpoint::CreateOrganizationAccount,
            &[
                ("userSessionId", sid.as_str()),
                ("organizationAccount.organizationName", name),
                ("organizationAccount.login.username", username),
                ("organizationAccount.login.password", "pw"),
            ],
        )
    };
    for i in 0..MANY {
        let answer = create(&mut emu, &format!("Org {i}"), &format!("user{i}"));
        assert_eq!(answer["operationResult"], "SUCCESS", "{answer}");
    }
    let taken = create(&mut emu, "Another", "USER150");
    assert_eq!(taken["operationResult"], "FAIL", "{taken}");
    assert_eq!(taken["errors"]["error"]["errorCode"], "10061", "{taken}");
    let free = create(&mut emu, "Another", "user300");
    assert_eq!(free["operationResult"], "SUCCESS", "{free}");
}

#[test]
fn commvault_finds_one_client_among_many_and_refuses_a_taken_name() {
    use crate::provider_commvault::{Emulator, body, create_body};
    let mut emu = Emulator::new(CommvaultConfig::default());
    let token = emu.login();
    let mut ids = Vec::new();
    for i in 0..MANY {
        let answer = emu.call(
            CvEndpoint::CreateOrganization,
            Some(&token),
            &create_body(&format!("Org {i}")),
        );
        assert_eq!(answer.status.as_u16(), 200, "{:?}", body(&answer));
        ids.push(body(&answer)["response"]["entity"]["clientId"].clone());
    }
    let by_name = emu.call(
        CvEndpoint::GetClient("byName(clientName='ORG 137')".into()),
        Some(&token),
        &Value::Null,
    );
    let entity = &body(&by_name)["clientProperties"][0]["client"]["clientEntity"];
    assert_eq!(entity["clientName"], "Org 137");
    assert_eq!(entity["clientId"], ids[137]);
    let by_id = emu.call(
        CvEndpoint::GetClient(ids[42].to_string()),
        Some(&token),
        &Value::Null,
    );
    assert_eq!(
        body(&by_id)["clientProperties"][0]["client"]["clientEntity"]["clientName"],
        "Org 42"
    );
    let taken = emu.call(
        CvEndpoint::CreateOrganization,
        Some(&token),
        &create_body(" org 250 "),
    );
    assert_eq!(taken.status.as_u16(), 409, "{:?}", body(&taken));
    let missing = emu.call(
        CvEndpoint::GetClient("byName(clientName='Org 300')".into()),
        Some(&token),
        &Value::Null,
    );
    assert_eq!(missing.status.as_u16(), 404);
}

#[test]
fn oracle_finds_one_organization_among_many_and_pages_through_all() {
    use crate::provider_oracle::{Emu, T0};
    let mut emu = Emu::new(OracleConfig::default());
    let token = emu.login(T0);
    for i in 0..MANY {
        let reply = emu.call(
            "POST",
            "/ccadmin/v1/organizations",
            None,
            Some(&token),
            json!({"name": format!("Org {i:04}")})
                .to_string()
                .as_bytes(),
            T0,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let q = |filter: &str| {
        format!(
            "q={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        )
    };
    let names = |reply: &orgform::sandbox::oracle::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let one = emu.call(
        "GET",
        "/ccadmin/v1/organizations",
        Some(&q(r#"name eq "org 0137""#)),
        Some(&token),
        b"",
        T0,
    );
    assert_eq!(names(&one), ["Org 0137"], "{}", one.body);
    let several = emu.call(
        "GET",
        "/ccadmin/v1/organizations",
        Some(&q(r#"name eq "Org 0299" or name eq "Org 0003""#)),
        Some(&token),
        b"",
        T0,
    );
    assert_eq!(names(&several), ["Org 0003", "Org 0299"]);

    // Every organization, page by page, with a create between two pages.
    let page = |emu: &mut Emu, offset: usize| {
        let query = format!("offset={offset}&limit=250");
        emu.call(
            "GET",
            "/ccadmin/v1/organizations",
            Some(&query),
            Some(&token),
            b"",
            T0,
        )
    };
    let first = page(&mut emu, 0);
    assert_eq!(first.body["totalResults"], MANY.to_string());
    assert_eq!(names(&first).first().map(String::as_str), Some("Org 0000"));
    let late = emu.call(
        "POST",
        "/ccadmin/v1/organizations",
        None,
        Some(&token),
        br#"{"name": "Late Org"}"#,
        T0,
    );
    assert_eq!(late.status, 200);
    let second = page(&mut emu, 250);
    assert_eq!(second.body["totalResults"], (MANY + 1).to_string());
    assert_eq!(
        names(&second).last().map(String::as_str),
        Some("Late Org"),
        "a create between two pages is in the next one"
    );
}

#[test]
fn oracle_finds_one_request_among_many_and_refuses_a_registered_email() {
    use crate::provider_oracle::{Emu, T0};
    let mut emu = Emu::new(OracleConfig::default());
    let request = |i: usize, email: &str| {
        json!({
            "name": format!("Request {i}"),
            "profile": {"email": email, "firstName": "A", "lastName": "B"},
        })
    };
    for i in 0..MANY {
        let reply = emu.request(&request(i, &format!("user{i}@example.com")), T0);
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let taken = emu.request(&request(999, "USER77@example.com"), T0);
    assert_eq!(taken.status, 400, "{}", taken.body);
    let token = emu.login(T0);
    let query = format!(
        "q={}",
        url::form_urlencoded::byte_serialize(br#"name eq "request 201""#.as_slice())
            .collect::<String>()
    );
    let found = emu.call(
        "GET",
        "/ccadmin/v1/organizationRequests",
        Some(&query),
        Some(&token),
        b"",
        T0,
    );
    let items = found.body["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", found.body);
    assert_eq!(items[0]["name"], "Request 201");
    let id = items[0]["id"].to_string();
    let one = emu.call(
        "GET",
        &format!("/ccadmin/v1/organizationRequests/{id}"),
        None,
        Some(&token),
        b"",
        T0,
    );
    assert_eq!(one.body["name"], "Request 201", "{}", one.body);
}

#[test]
fn salesforce_finds_one_signup_among_many_and_refuses_a_taken_username() {
    use crate::provider_salesforce::{CREATE, T0, call, emulator_with, signup, soql, token};
    let mut emu = emulator_with(SalesforceConfig {
        signups_per_day: 0,
        ..SalesforceConfig::default()
    });
    let token = token(&mut emu);
    let mut ids = Vec::new();
    for i in 0..MANY {
        let reply = call(
            &mut emu,
            &token,
            "POST",
            CREATE,
            &signup(&format!("admin{i}@acme.example")),
            T0,
        );
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        ids.push(
            reply.body.expect("body")["id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    let later = T0 + 60_000;
    let found = soql(
        &mut emu,
        &token,
        "SELECT Id, Username FROM SignupRequest WHERE Username IN ('ADMIN137@acme.example', 'nobody@acme.example', 'admin5@acme.example')",
        later,
    );
    let records = found.body.expect("body")["records"].clone();
    let usernames: Vec<&str> = records
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["Username"].as_str())
        .collect();
    assert_eq!(usernames, ["admin5@acme.example", "admin137@acme.example"]);
    let by_id = soql(
        &mut emu,
        &token,
        &format!(
            "SELECT Username FROM SignupRequest WHERE Id = '{}'",
            ids[88]
        ),
        later,
    );
    assert_eq!(
        by_id.body.expect("body")["records"][0]["Username"],
        "admin88@acme.example"
    );
    let retrieved = call(
        &mut emu,
        &token,
        "GET",
        &format!("{CREATE}{}", &ids[250][..15]),
        &Value::Null,
        later,
    );
    assert_eq!(
        retrieved.body.expect("body")["Username"],
        "admin250@acme.example",
        "a 15-character id names its record"
    );
    // A taken username is refused when the sign-up settles (C-1007).
    let record = settle(&mut emu, &token, &signup("Admin42@acme.example"), later);
    assert_eq!(record["Status"], "Error", "{record}");
    assert_eq!(record["ErrorCode"], "C-1007", "{record}");
}

/// Sends one sign-up at `at` and reads its record a minute later, once it has settled.
fn settle(emu: &mut crate::provider_salesforce::Emu, token: &str, body: &Value, at: u64) -> Value {
    use crate::provider_salesforce::{CREATE, call, soql};
    let reply = call(emu, token, "POST", CREATE, body, at);
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let id = reply.body.expect("body")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let settled = soql(
        emu,
        token,
        &format!("SELECT Status, ErrorCode FROM SignupRequest WHERE Id = '{id}'"),
        at + 60_000,
    );
    settled.body.expect("body")["records"][0].clone()
}

#[test]
fn salesforce_refuses_a_taken_subdomain_among_many() {
    use crate::provider_salesforce::{CREATE, T0, call, emulator_with, signup, token};
    let mut emu = emulator_with(SalesforceConfig {
        signups_per_day: 0,
        ..SalesforceConfig::default()
    });
    let token = token(&mut emu);
    let with_subdomain = |username: &str, subdomain: &str| {
        let mut body = signup(username);
        body["Subdomain"] = Value::from(subdomain);
        body
    };
    for i in 0..MANY {
        let body = with_subdomain(&format!("admin{i}@acme.example"), &format!("acme-{i}"));
        let reply = call(&mut emu, &token, "POST", CREATE, &body, T0);
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let later = T0 + 60_000;
    // One new subdomain settles; one taken by an earlier sign-up (in another case) is refused.
    let mut outcomes = Vec::new();
    for (username, subdomain) in [
        ("fresh@acme.example", "acme-new"),
        ("late@acme.example", "ACME-137"),
    ] {
        let record = settle(
            &mut emu,
            &token,
            &with_subdomain(username, subdomain),
            later,
        );
        outcomes.push((record["Status"].clone(), record["ErrorCode"].clone()));
    }
    assert_eq!(
        outcomes,
        [
            (Value::from("Success"), Value::Null),
            (Value::from("Error"), Value::from("C-1019")),
        ]
    );
}

#[tokio::test]
async fn heron_changes_the_one_integration_asked_among_many() {
    use crate::sandbox::{Heron, integration};
    let heron = Heron::start(SandboxConfig {
        heron_rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..MANY {
        let created: Value = heron
            .create(&integration(&format!("https://org{i}.my.salesforce.com")))
            .await
            .json()
            .await
            .expect("JSON");
        ids.push(
            created["crm_integration"]["heron_id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    let patched = heron.patch(&ids[137], &json!({"is_live": false})).await;
    assert_eq!(patched.status().as_u16(), 200);
    let all = heron.list().await;
    assert_eq!(all.len(), MANY);
    let not_live: Vec<&str> = all
        .iter()
        .filter(|i| i["is_live"] == false)
        .filter_map(|i| i["heron_id"].as_str())
        .collect();
    assert_eq!(not_live, [ids[137].as_str()]);
    heron.stop().await;
}
