//! Who ran it (design §12 "Who did it"): besides the operator's declared name, what the
//! machine itself says: the OS account from the password database and the host name. These
//! are recorded in every run; unlike `--operator` and `$USER`, the account cannot be typed in.

use serde::Serialize;

/// The OS account this process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Account {
    pub uid: u32,
    /// The login name of `uid` in the password database, when it has an entry.
    pub login: Option<String>,
}

impl Account {
    pub(crate) fn current() -> Account {
        // SAFETY: getuid(2) cannot fail and has no memory effects.
        let uid = unsafe { libc::getuid() };
        Account {
            uid,
            login: login_name(uid),
        }
    }
}

/// The login name of `uid`, from the password database (`getpwuid_r`).
pub(crate) fn login_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `passwd` is plain old data that getpwuid_r fills in; all pointers it sets point
    // into `buf`, which outlives their use below.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_string_lossy()
            .into_owned();
        (!name.is_empty()).then_some(name)
    }
}

/// This machine's host name.
pub(crate) fn machine() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if rc == 0 && !name.is_empty() => name.to_string(),
        _ => "unknown-host".to_string(),
    }
}

/// The declared operator: `--operator` (or `$RUNBOOK_OPERATOR`), else `$USER`, else the
/// login name of the account, else `uid N`: never a placeholder that names nobody.
pub(crate) fn operator_name(flag: Option<&str>) -> String {
    let given = flag
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty());
    given.unwrap_or_else(|| {
        let account = Account::current();
        account.login.unwrap_or_else(|| format!("uid {}", account.uid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_read_from_the_password_database() {
        let account = Account::current();
        // SAFETY: as above.
        assert_eq!(account.uid, unsafe { libc::getuid() });
        let expected = std::process::Command::new("id").arg("-un").output().unwrap();
        assert_eq!(
            account.login.as_deref(),
            Some(String::from_utf8_lossy(&expected.stdout).trim())
        );
        assert!(!machine().is_empty());
    }
}
