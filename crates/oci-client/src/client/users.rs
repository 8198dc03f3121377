//! The Users operations of the Identity API, and the paging every list shares.

use std::collections::BTreeSet;

use serde::Deserialize;
use time::OffsetDateTime;

use super::{Client, Reply, malformed, parse_json};
use crate::error::Error;
use crate::path::{check_ocid, query_value, segment};

/// A user as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub compartment_id: String,
    pub name: String,
    pub description: String,
    pub email: Option<String>,
    pub lifecycle_state: String,
    pub inactive_status: Option<i64>,
    pub time_created: OffsetDateTime,
    /// The `etag` header of the reply that carried this user, if any.
    pub etag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUser {
    id: String,
    compartment_id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    email: Option<String>,
    lifecycle_state: String,
    #[serde(default)]
    inactive_status: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    time_created: OffsetDateTime,
}

impl WireUser {
    fn into_user(self, etag: Option<String>) -> User {
        User {
            id: self.id,
            compartment_id: self.compartment_id,
            name: self.name,
            description: self.description,
            email: self.email,
            lifecycle_state: self.lifecycle_state,
            inactive_status: self.inactive_status,
            time_created: self.time_created,
            etag,
        }
    }
}

fn parse_user(reply: &Reply) -> Result<User, Error> {
    let wire: WireUser = parse_json(reply)?;
    Ok(wire.into_user(reply.etag.clone()))
}

impl Client {
    /// Follows `opc-next-page` from `path` until the service stops sending one; a page token
    /// seen before is an error, so a service that loops cannot keep the client forever.
    pub(super) async fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut page: Option<String> = None;
        loop {
            let mut params: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{k}={}", query_value(v)))
                .collect();
            if let Some(page) = &page {
                params.push(format!("page={}", query_value(page)));
            }
            let joined = params.join("&");
            let reply = self
                .call(
                    reqwest::Method::GET,
                    path,
                    (!joined.is_empty()).then_some(joined.as_str()),
                    None,
                    &[],
                )
                .await?;
            let items: Vec<T> =
                serde_json::from_slice(&reply.body).map_err(|e| malformed(&reply, e))?;
            out.extend(items);
            match reply.next_page.filter(|n| !n.is_empty()) {
                None => return Ok(out),
                Some(next) => {
                    if !seen.insert(next.clone()) {
                        return Err(Error::Malformed {
                            status: reply.status,
                            detail: format!(
                                "the list of {path} sent the page token {next:?} a second time (after {} items); stopping instead of looping",
                                out.len()
                            ),
                        });
                    }
                    page = Some(next);
                }
            }
        }
    }

    /// CreateUser in `compartment_id` (the tenancy), with one `opc-retry-token` for every
    /// retry of this call.
    pub async fn create_user(
        &self,
        compartment_id: &str,
        name: &str,
        description: &str,
        email: Option<&str>,
    ) -> Result<User, Error> {
        check_ocid("compartment_id", compartment_id)?;
        let mut details = serde_json::json!({
            "compartmentId": compartment_id,
            "name": name,
            "description": description,
        });
        if let Some(email) = email {
            details["email"] = serde_json::json!(email);
        }
        let body = serde_json::to_vec(&details).map_err(|e| Error::Config(e.to_string()))?;
        let retry_token = self.random(30);
        let reply = self
            .call(
                reqwest::Method::POST,
                "/users",
                None,
                Some(&body),
                &[("opc-retry-token", retry_token)],
            )
            .await?;
        parse_user(&reply)
    }

    /// GetUser; `None` when the service answers 404.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<User>, Error> {
        check_ocid("user_id", user_id)?;
        match self
            .call(
                reqwest::Method::GET,
                &format!("/users/{}", segment("user_id", user_id)?),
                None,
                None,
                &[],
            )
            .await
        {
            Ok(reply) => parse_user(&reply).map(Some),
            Err(err) if err.status() == Some(404) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// ListUsers of a compartment (the tenancy), every page.
    pub async fn list_users(&self, compartment_id: &str) -> Result<Vec<User>, Error> {
        check_ocid("compartment_id", compartment_id)?;
        let wire: Vec<WireUser> = self
            .list_all("/users", &[("compartmentId", compartment_id)])
            .await?;
        Ok(wire.into_iter().map(|u| u.into_user(None)).collect())
    }

    /// UpdateUser: a new description and, when given, a new email.
    pub async fn update_user(
        &self,
        user_id: &str,
        description: &str,
        email: Option<&str>,
    ) -> Result<User, Error> {
        check_ocid("user_id", user_id)?;
        let mut details = serde_json::json!({"description": description});
        if let Some(email) = email {
            details["email"] = serde_json::json!(email);
        }
        let body = serde_json::to_vec(&details).map_err(|e| Error::Config(e.to_string()))?;
        let reply = self
            .call(
                reqwest::Method::PUT,
                &format!("/users/{}", segment("user_id", user_id)?),
                None,
                Some(&body),
                &[],
            )
            .await?;
        parse_user(&reply)
    }

    /// DeleteUser. A user that is already gone (404) counts as deleted.
    pub async fn delete_user(&self, user_id: &str) -> Result<(), Error> {
        check_ocid("user_id", user_id)?;
        match self
            .call(
                reqwest::Method::DELETE,
                &format!("/users/{}", segment("user_id", user_id)?),
                None,
                None,
                &[],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(404) => Ok(()),
            Err(err) => Err(err),
        }
    }
}
