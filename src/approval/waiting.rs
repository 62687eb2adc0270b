//! A request a run waits for, in the local spool or on the audit host: where its answers are
//! read (beside the request, or beside its local copy once fetched), and how the run says it
//! still waits (a lock held, or a heartbeat touched).

use std::path::{Path, PathBuf};

use super::{Config, Request, remote};
use crate::error::Error;

pub(crate) enum Waiting {
    /// In the local spool, held locked for as long as the run waits.
    Local { path: PathBuf, _held: std::fs::File },
    /// On the audit host.
    Remote(Box<remote::Waiting>),
}

impl Config {
    /// Writes the request where the approvers look: the audit host's spool when there is one,
    /// else the local one. `Ok(Err(why))`: the audit host could not take it (the step then
    /// cannot be approved, and fails saying why).
    pub(crate) async fn ask(
        &self,
        request: &Request,
        attempt: u32,
    ) -> Result<Result<(Waiting, Vec<u8>), String>, Error> {
        let Some(remote) = &self.remote else {
            let (path, bytes, held) = self.write(request, attempt)?;
            return Ok(Ok((Waiting::Local { path, _held: held }, bytes)));
        };
        let (stem, bytes) = super::stem_and_bytes(request, attempt);
        Ok(match remote.write(&stem, &bytes).await {
            Ok(waiting) => Ok((Waiting::Remote(Box::new(waiting)), bytes)),
            Err(why) => Err(format!(
                "the approval request cannot be written to the audit host {}: {why}",
                remote.host
            )),
        })
    }
}

impl Waiting {
    /// The request whose answers are read beside it.
    pub(crate) fn request(&self) -> &Path {
        match self {
            Waiting::Local { path, .. } => path,
            Waiting::Remote(w) => &w.request,
        }
    }

    /// The request, as the trail, the operator and the approvers name it.
    pub(crate) fn shown(&self) -> String {
        match self {
            Waiting::Local { path, .. } => path.display().to_string(),
            Waiting::Remote(w) => w.url(),
        }
    }

    /// An answer file read beside `request()`, as the trail names it.
    pub(crate) fn shown_file(&self, file: &Path) -> String {
        match self {
            Waiting::Local { .. } => file.display().to_string(),
            Waiting::Remote(w) => w.url_of(file),
        }
    }

    /// Says the run still waits, and brings the answers given so far beside `request()`.
    pub(crate) async fn refresh(&self) -> Result<(), String> {
        match self {
            Waiting::Local { .. } => Ok(()),
            Waiting::Remote(w) => w.refresh().await,
        }
    }

    /// The run waits no more (answered, timed out, stopped).
    pub(crate) async fn end(self) {
        if let Waiting::Remote(w) = self {
            w.end().await;
        }
    }
}
