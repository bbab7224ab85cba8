//! The broker's admin HTTP API as the CLI calls it: the changes to
//! pipelines (deploy, pause, resume, reset, delete) go through it, as `rpk`
//! deploys transforms through Redpanda's admin API, because the broker
//! refuses Kafka clients' writes to its internal topics. An error answer
//! becomes an error with the API's own message.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use fjord_pipeline::runtime::PipelineStatus;
use serde_json::Value;

use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::client::{AdminAddress, AdminArgs, SaslArgs};

/// What deploying one manifest did.
pub struct Deployed {
    pub name: String,
    pub revision: i64,
    /// That manifest text was deployed already: nothing was written.
    pub unchanged: bool,
}

/// A client of one broker's admin API.
pub struct Admin {
    base: String,
    agent: ureq::Agent,
    /// `Authorization: Basic …`, with a login.
    authorization: Option<String>,
}

impl Admin {
    pub fn new(args: &AdminArgs) -> Result<Admin> {
        Admin::with(&args.address, &args.login)
    }

    /// The admin API at `address`, logging in as `login`'s user (HTTP
    /// Basic; without one, anonymous).
    pub fn with(address: &AdminAddress, login: &SaslArgs) -> Result<Admin> {
        let trimmed = address.admin.trim_end_matches('/');
        let base = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("http://{trimmed}")
        };
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false);
        if let Some(path) = &address.admin_ca {
            let pem = std::fs::read(path)
                .with_context(|| format!("--admin-ca {}: cannot read it", path.display()))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .map(|c| c.map(|c| ureq::tls::Certificate::from_der(&c).to_owned()))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("--admin-ca {}: not PEM certificates", path.display()))?;
            if certs.is_empty() {
                bail!("--admin-ca {}: no CERTIFICATE in the file", path.display());
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        let authorization = login.login()?.map(|(user, password)| {
            let pair = format!("{user}:{password}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Ok(Admin {
            base,
            agent: config.build().into(),
            authorization,
        })
    }

    /// A request with the login, if any.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(value) => request.header("Authorization", value),
            None => request,
        }
    }

    /// Deploys `manifest` (YAML), named `file` in its errors; returns the
    /// pipeline's name, the revision (the deployment record's offset) its
    /// status will report once the broker runs it, and whether that
    /// manifest was deployed already (then nothing changed).
    pub fn deploy(&self, manifest: &str, file: &str, paused: bool) -> Result<Deployed> {
        let response = self
            .authorized(self.agent.post(format!("{}/api/v1/pipelines", self.base)))
            .header("Content-Type", "application/yaml")
            .query("file", file)
            .query("paused", if paused { "true" } else { "false" })
            .send(manifest);
        let body = self.answer("deploying a pipeline", response)?;
        Ok(Deployed {
            name: body["name"].as_str().unwrap_or_default().to_owned(),
            revision: body["revision"].as_i64().unwrap_or(-1),
            unchanged: body["unchanged"].as_bool().unwrap_or(false),
        })
    }

    /// Pauses (or resumes) pipeline `name`.
    pub fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        let verb = if paused { "pause" } else { "resume" };
        let response = self
            .authorized(self.agent.post(format!(
                "{}/api/v1/pipelines/{}/{verb}",
                self.base,
                segment(name)
            )))
            .header("Content-Type", "application/json")
            .send("{}");
        self.answer(&format!("{verb} pipeline {name}"), response)
            .map(|_| ())
    }

    /// Resets paused pipeline `name` to `to` (`"earliest"`, `"latest"` or
    /// `{"timestamp": MS}`); the API's answer: the offsets committed and
    /// the changelogs emptied.
    pub fn reset(&self, name: &str, to: Value) -> Result<Value> {
        let response = self
            .authorized(self.agent.post(format!(
                "{}/api/v1/pipelines/{}/reset",
                self.base,
                segment(name)
            )))
            .header("Content-Type", "application/json")
            .send(serde_json::json!({ "to": to }).to_string());
        self.answer(&format!("resetting pipeline {name}"), response)
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        let response = self
            .authorized(self.agent.delete(format!(
                "{}/api/v1/pipelines/{}",
                self.base,
                segment(name)
            )))
            .header("Content-Type", "application/json")
            .call();
        self.answer(&format!("deleting pipeline {name}"), response)
            .map(|_| ())
    }

    /// Pipeline `name`'s latest status (`None` before its first).
    pub fn status(&self, name: &str) -> Result<Option<PipelineStatus>> {
        let response = self
            .authorized(
                self.agent
                    .get(format!("{}/api/v1/pipelines/{}", self.base, segment(name))),
            )
            .call();
        let body = self.answer(&format!("reading pipeline {name}"), response)?;
        match &body["status"] {
            Value::Null => Ok(None),
            status => serde_json::from_value(status.clone())
                .map(Some)
                .context("the admin API answered a status this CLI does not read"),
        }
    }

    /// The JSON body of a success, or the API's message as the error.
    fn answer(
        &self,
        doing: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let mut response = response.with_context(|| {
            format!(
                "{doing}: cannot reach the admin API at {} (--admin, FJORD_ADMIN; --admin-ca \
                 for an https:// one)",
                self.base
            )
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("{doing}: reading the admin API's answer"))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["error"].as_str().unwrap_or(text.trim());
            bail!(
                "{message} ({doing}: HTTP {} from {})",
                status.as_u16(),
                self.base
            );
        }
        Ok(body)
    }
}

/// `name` as one URL path segment (names are checked by the server; this
/// keeps a stray `/` or `?` from changing which path is called).
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
