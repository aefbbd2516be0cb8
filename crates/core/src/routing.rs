//! Routing: which endpoints of an application receive a message, by event-type filter and channels.

/// Whether an endpoint with the given event-type filter and channels receives a message of `event_type`
/// published on `msg_channels`.
///
/// Svix's rules: no filter means every event type; an endpoint with channels only receives messages that
/// share at least one channel with it; an endpoint without channels receives messages on any channel.
pub fn endpoint_accepts(
    filter_types: Option<&[String]>,
    endpoint_channels: Option<&[String]>,
    event_type: &str,
    msg_channels: Option<&[String]>,
) -> bool {
    let type_ok = filter_types.is_none_or(|types| types.iter().any(|t| t == event_type));
    let channel_ok = endpoint_channels
        .is_none_or(|wanted| msg_channels.is_some_and(|published| published.iter().any(|c| wanted.contains(c))));
    type_ok && channel_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn check(
        filter: Option<&[&str]>,
        ep_channels: Option<&[&str]>,
        event: &str,
        msg_channels: Option<&[&str]>,
        expected: bool,
    ) {
        let filter = filter.map(strings);
        let ep_channels = ep_channels.map(strings);
        let msg_channels = msg_channels.map(strings);
        assert_eq!(
            endpoint_accepts(filter.as_deref(), ep_channels.as_deref(), event, msg_channels.as_deref()),
            expected,
            "filter {filter:?}, endpoint channels {ep_channels:?}, event {event}, message channels {msg_channels:?}"
        );
    }

    #[test]
    fn routing_rules() {
        check(None, None, "user.created", None, true);
        check(Some(&["user.created"]), None, "user.created", None, true);
        check(Some(&["user.created"]), None, "user.deleted", None, false);
        check(None, None, "a", Some(&["project_1"]), true);
        check(None, Some(&["project_1"]), "a", None, false);
        check(None, Some(&["project_1"]), "a", Some(&["project_2", "project_1"]), true);
        check(None, Some(&["project_1"]), "a", Some(&["project_2"]), false);
        check(Some(&["b"]), Some(&["project_1"]), "a", Some(&["project_1"]), false);
    }
}
