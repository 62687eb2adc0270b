//! Signatures over the heads of an audit trail (design §12), in OpenSSH's SSHSIG format, made
//! and checked by the system's `ssh-keygen -Y`: no cryptography of our own, and agent-held or
//! hardware keys work as they do for `git` commit signing. What is signed is the 64 lowercase
//! hex characters of an event's own hash, so `printf %s HASH | ssh-keygen -Y verify ...` checks
//! it with stock tools.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The namespace of signatures over audit heads.
pub(crate) const AUDIT_NAMESPACE: &str = "runbook-audit";

/// A signature as the trail records it (`"signature": {...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub format: String,
    pub namespace: String,
    /// `SHA256:<fingerprint>` of the signing key.
    pub key: String,
    /// `-----BEGIN SSH SIGNATURE-----\n...`
    pub armored: String,
}

/// The key this run signs with.
#[derive(Debug)]
pub struct Signer {
    via: Via,
    /// `SHA256:...`
    pub fingerprint: String,
    /// Where the key came from, in words: `--signing-key FILE`, `ssh-agent`.
    pub origin: String,
}

/// How a signature is made.
#[derive(Debug)]
enum Via {
    /// `ssh-keygen -Y sign -f FILE`: a private key file (it may ask for a passphrase, or be a
    /// public key the agent holds, as with `git`).
    KeyFile(PathBuf),
    /// The agent at `socket`, asked directly: no process per signature.
    Agent {
        socket: PathBuf,
        key: Box<ssh_key::PublicKey>,
    },
}

/// Whether a run signs, and if not, why: said at start and in every review.
#[derive(Debug)]
pub(crate) enum Signing {
    Signed(std::sync::Arc<Signer>),
    Unsigned(String),
}

impl Signing {
    /// `--no-sign`, else `--signing-key` / `RUNBOOK_SIGNING_KEY`, else the running ssh-agent's
    /// first key, else unsigned. A key that is named but cannot sign is a pre-flight error:
    /// the operator asked for a signed trail and must not silently get an unsigned one.
    pub(crate) fn choose(key: Option<&Path>, no_sign: bool) -> Result<Signing, Error> {
        if no_sign {
            return Ok(Signing::Unsigned("--no-sign".into()));
        }
        let signer = match key {
            Some(file) => Signer::from_file(file)?,
            None => match Signer::from_agent() {
                Ok(Some(signer)) => signer,
                Ok(None) => {
                    return Ok(Signing::Unsigned(
                        "no --signing-key, RUNBOOK_SIGNING_KEY or ssh-agent key".into(),
                    ));
                }
                Err(why) => return Ok(Signing::Unsigned(why)),
            },
        };
        // One signature now, so a key that cannot sign (wrong passphrase, agent refusing)
        // fails before anything runs rather than at the seal.
        signer
            .sign(AUDIT_NAMESPACE, b"runbook pre-flight")
            .map_err(|e| Error::usage(format!("cannot sign with {}: {e}", signer.origin)))?;
        Ok(Signing::Signed(std::sync::Arc::new(signer)))
    }

    pub(crate) fn signer(&self) -> Option<std::sync::Arc<Signer>> {
        match self {
            Signing::Signed(s) => Some(s.clone()),
            Signing::Unsigned(_) => None,
        }
    }

    /// The key and its origin, or why there is none: for `run started` and `run resumed`.
    pub(crate) fn who(&self) -> (Option<(String, String)>, Option<String>) {
        match self {
            Signing::Signed(s) => (Some((s.fingerprint.clone(), s.origin.clone())), None),
            Signing::Unsigned(why) => (None, Some(why.clone())),
        }
    }
}

impl Signer {
    fn from_file(file: &Path) -> Result<Signer, Error> {
        if !file.is_file() {
            return Err(Error::usage(format!(
                "--signing-key `{}`: no such file (give a private key, or the public key of one held by ssh-agent)",
                file.display()
            )));
        }
        let fingerprint = fingerprint(file).map_err(|e| {
            Error::usage(format!(
                "--signing-key `{}` is not an SSH key: {e}",
                file.display()
            ))
        })?;
        Ok(Signer {
            via: Via::KeyFile(file.to_path_buf()),
            fingerprint,
            origin: format!("--signing-key {}", file.display()),
        })
    }

    /// The first key of the agent at `SSH_AUTH_SOCK`; `Ok(None)` when there is no agent.
    fn from_agent() -> Result<Option<Signer>, String> {
        let Some(socket) = super::agent::socket() else {
            return Ok(None);
        };
        let Some(key) = super::agent::keys(&socket)?.into_iter().next() else {
            return Err("the ssh-agent holds no key".into());
        };
        Ok(Some(Signer {
            fingerprint: super::agent::fingerprint(&key),
            via: Via::Agent {
                socket,
                key: Box::new(key),
            },
            origin: "ssh-agent".into(),
        }))
    }

    /// Signs `message` in `namespace`.
    pub fn sign(&self, namespace: &str, message: &[u8]) -> Result<Signature, String> {
        let armored = match &self.via {
            Via::KeyFile(file) => keygen_sign(file, namespace, message)?,
            Via::Agent { socket, key } => super::agent::sign(socket, key, namespace, message)?,
        };
        Ok(Signature {
            format: "sshsig".into(),
            namespace: namespace.into(),
            key: self.fingerprint.clone(),
            armored,
        })
    }
}

/// `message` signed by `ssh-keygen -Y sign -f FILE`, armored.
fn keygen_sign(file: &Path, namespace: &str, message: &[u8]) -> Result<String, String> {
    let (out, written) = keygen(
        ["-q", "-Y", "sign", "-n", namespace, "-f"]
            .map(OsStr::new)
            .into_iter()
            .chain([file.as_os_str()]),
        message,
    )?;
    written.map_err(|e| format!("cannot write to `ssh-keygen`: {e}"))?;
    let armored = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !armored.starts_with("-----BEGIN SSH SIGNATURE-----") {
        return Err(last_words(&out.stderr, "ssh-keygen -Y sign failed"));
    }
    Ok(armored)
}

/// `ssh-keygen ARGS` run with `input` on its stdin: its output, and apart from it whether
/// `input` was written (a check may stop reading before the end, and say why itself).
fn keygen<'a>(
    args: impl IntoIterator<Item = &'a OsStr>,
    input: &[u8],
) -> Result<(Output, std::io::Result<()>), String> {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `ssh-keygen`: {e}"))?;
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(input),
        None => Ok(()),
    };
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`ssh-keygen` failed: {e}"))?;
    Ok((out, written))
}

/// `SHA256:...` of a key file (public or private), from `ssh-keygen -l`.
pub(crate) fn fingerprint(file: &Path) -> Result<String, String> {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ssh-keygen`: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .filter(|f| out.status.success() && f.starts_with("SHA256:"))
        .map(str::to_string)
        .ok_or_else(|| last_words(&out.stderr, "ssh-keygen -l failed"))
}

/// What a signature was checked against.
pub(crate) enum Against<'a> {
    /// Only that it is a good signature by the key it embeds, whose fingerprint is `key`.
    ItsOwnKey,
    /// An `allowed_signers` file: the key must be listed, for this namespace.
    AllowedSigners(&'a Path),
    /// An `allowed_signers` file's bytes, read earlier from `file` (named in errors).
    AllowedSignersRead { file: &'a Path, text: &'a [u8] },
}

/// Checks `sig` over `message`. `Ok` carries the principal (`allowed_signers`) or the key.
pub(crate) fn check(sig: &Signature, message: &[u8], against: Against<'_>) -> Result<String, String> {
    if sig.format != "sshsig" {
        return Err(format!("unknown signature format `{}`", sig.format));
    }
    let dir = tempfile::Builder::new()
        .prefix("rb-verify-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let sig_file = dir.path().join("sig");
    std::fs::write(&sig_file, format!("{}\n", sig.armored))
        .map_err(|e| format!("cannot write {}: {e}", sig_file.display()))?;
    // `ssh-keygen -Y OP` with these flags and their values: whether it succeeded, and all
    // it wrote.
    let run = |op: &str, flags: &[(&str, &OsStr)], input: &[u8]| {
        let args = flags.iter().flat_map(|&(flag, value)| [OsStr::new(flag), value]);
        let (out, _) = keygen(["-Y", op].map(OsStr::new).into_iter().chain(args), input)?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok::<_, String>((out.status.success(), text))
    };
    let ns = OsStr::new(&sig.namespace);
    let sig_arg = sig_file.as_os_str();
    match against {
        Against::ItsOwnKey => {
            let (ok, text) = run("check-novalidate", &[("-n", ns), ("-s", sig_arg)], message)?;
            if !ok {
                return Err("the signature does not match the event's hash".into());
            }
            let key = text
                .split_whitespace()
                .find(|w| w.starts_with("SHA256:"))
                .unwrap_or_default();
            // An empty `key`: whoever signed it (a signature read from a file says nothing).
            if key != sig.key && !sig.key.is_empty() {
                return Err(format!(
                    "the signature is by key {key}, not {} as the event says",
                    sig.key
                ));
            }
            Ok(key.to_string())
        }
        Against::AllowedSigners(_) | Against::AllowedSignersRead { .. } => {
            let (file, checked) = match against {
                Against::AllowedSignersRead { file, text } => {
                    let copy = dir.path().join("allowed_signers");
                    std::fs::write(&copy, text)
                        .map_err(|e| format!("cannot write {}: {e}", copy.display()))?;
                    (file, copy)
                }
                Against::AllowedSigners(file) => (file, file.to_path_buf()),
                Against::ItsOwnKey => unreachable!(),
            };
            let (found, principals) = run(
                "find-principals",
                &[("-s", sig_arg), ("-f", checked.as_os_str())],
                b"",
            )?;
            let principal = principals.lines().next().unwrap_or_default().trim().to_string();
            if !found || principal.is_empty() {
                return Err(format!("key {} is not in {}", sig.key, file.display()));
            }
            let (ok, _) = run(
                "verify",
                &[
                    ("-f", checked.as_os_str()),
                    ("-I", principal.as_ref()),
                    ("-n", ns),
                    ("-s", sig_arg),
                ],
                message,
            )?;
            if !ok {
                return Err(format!(
                    "the signature by {principal} ({}) does not verify against {}",
                    sig.key,
                    file.display()
                ));
            }
            Ok(principal)
        }
    }
}

/// The last non-empty line a tool wrote to stderr, or `fallback`.
fn last_words(stderr: &[u8], fallback: &str) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map_or_else(|| fallback.to_string(), str::to_string)
}
