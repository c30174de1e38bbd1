//! The delivery queue of a Telegram update under `order = "telegram_chat"`:
//! the chat of whatever the update carries (a message, an edited message, a
//! channel post, a callback query's message, a chat member change, a
//! reaction, a join request, a boost). Updates with no chat (inline queries,
//! polls, payments' pre-checkout queries) share one queue, as does a body
//! that is not an update at all.

use serde::Deserialize;

/// The queue of updates that have no chat.
pub const NO_CHAT: &str = "nochat";

/// The queue key for `body`: `chat:<id>`, or [`NO_CHAT`].
pub fn queue_of(body: &[u8]) -> String {
    match chat_of(body) {
        Some(id) => format!("chat:{id}"),
        None => NO_CHAT.to_string(),
    }
}

#[derive(Deserialize)]
struct Chat {
    id: i64,
}

/// What carries a chat directly: messages, member changes, reactions, join requests, boosts.
#[derive(Deserialize)]
struct WithChat {
    chat: Option<Chat>,
    /// A callback query's chat is its message's.
    message: Option<Box<WithChat>>,
}

#[derive(Deserialize)]
struct Update {
    message: Option<WithChat>,
    edited_message: Option<WithChat>,
    channel_post: Option<WithChat>,
    edited_channel_post: Option<WithChat>,
    business_message: Option<WithChat>,
    edited_business_message: Option<WithChat>,
    callback_query: Option<WithChat>,
    message_reaction: Option<WithChat>,
    message_reaction_count: Option<WithChat>,
    my_chat_member: Option<WithChat>,
    chat_member: Option<WithChat>,
    chat_join_request: Option<WithChat>,
    chat_boost: Option<WithChat>,
    removed_chat_boost: Option<WithChat>,
}

fn chat_of(body: &[u8]) -> Option<i64> {
    let update: Update = serde_json::from_slice(body).ok()?;
    let carriers = [
        update.message,
        update.edited_message,
        update.channel_post,
        update.edited_channel_post,
        update.business_message,
        update.edited_business_message,
        update.callback_query,
        update.message_reaction,
        update.message_reaction_count,
        update.my_chat_member,
        update.chat_member,
        update.chat_join_request,
        update.chat_boost,
        update.removed_chat_boost,
    ];
    carriers.into_iter().flatten().find_map(|carrier| carrier_chat(&carrier))
}

fn carrier_chat(carrier: &WithChat) -> Option<i64> {
    carrier.chat.as_ref().map(|c| c.id).or_else(|| carrier_chat(carrier.message.as_deref()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_update_is_queued_by_its_chat() {
        let cases: &[(&str, &str)] = &[
            (r#"{"update_id":1,"message":{"message_id":5,"chat":{"id":42,"type":"private"},"text":"hi"}}"#, "chat:42"),
            (r#"{"update_id":2,"edited_message":{"chat":{"id":-100123}}}"#, "chat:-100123"),
            (r#"{"update_id":3,"channel_post":{"chat":{"id":-1007}}}"#, "chat:-1007"),
            (r#"{"update_id":4,"callback_query":{"id":"x","from":{"id":9},"message":{"chat":{"id":77}}}}"#, "chat:77"),
            (r#"{"update_id":5,"my_chat_member":{"chat":{"id":8},"from":{"id":1}}}"#, "chat:8"),
            (r#"{"update_id":6,"message_reaction":{"chat":{"id":3}}}"#, "chat:3"),
            (r#"{"update_id":7,"inline_query":{"id":"q","from":{"id":9},"query":""}}"#, NO_CHAT),
            (r#"{"update_id":8,"callback_query":{"id":"x","inline_message_id":"m"}}"#, NO_CHAT),
            ("not json", NO_CHAT),
        ];
        for (body, queue) in cases {
            assert_eq!(queue_of(body.as_bytes()), *queue, "{body}");
        }
    }
}
