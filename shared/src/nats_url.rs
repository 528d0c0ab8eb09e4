//! Credentials in a NATS URL. The client library ignores the `user:password@` part of a URL,
//! so services read it here and pass it on explicitly (see `nats/auth.conf`).

/// `ConnectOptions` for `url`: with its user and password when it names them. Shortcoming:
/// percent-encoded characters in the user or password are taken literally.
pub fn connect_options(url: &str) -> async_nats::ConnectOptions {
    match credentials(url) {
        Some((user, password)) => {
            async_nats::ConnectOptions::with_user_and_password(user.to_owned(), password.to_owned())
        }
        None => async_nats::ConnectOptions::new(),
    }
}

/// The `user` and `password` of `scheme://user:password@host:port`, if present.
pub fn credentials(url: &str) -> Option<(&str, &str)> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.split_once(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_credentials_only_where_given() {
        assert_eq!(
            credentials("nats://gateway:s3cret@127.0.0.1:4222"),
            Some(("gateway", "s3cret"))
        );
        assert_eq!(credentials("nats://127.0.0.1:4222"), None);
        assert_eq!(credentials("127.0.0.1:4222"), None);
    }
}
