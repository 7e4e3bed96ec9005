//! The S3 event notifications of one SQS message body, as S3 sends them
//! (see the "Event message structure" page of the S3 documentation; the
//! samples in `events/` follow it).

use crate::layout::decode_event_key;
use aws_lambda_events::sqs::SqsEvent;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Created,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectEvent {
    pub bucket: String,
    pub key: String,
    pub kind: EventKind,
}

// The S3 notification as S3 delivers it to SQS.
#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<NotificationRecord>,
    /// `s3:TestEvent`, sent once when a notification is configured.
    #[serde(rename = "Event", default)]
    event: Option<String>,
}

#[derive(Deserialize)]
struct NotificationRecord {
    #[serde(rename = "eventName")]
    event_name: String,
    s3: S3Entity,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
}

/// True when every message of the batch is the `s3:TestEvent` that S3 sends
/// when a notification is configured: there is nothing to catalog, even before
/// the lake spec exists.
pub fn only_test_events(event: &SqsEvent) -> bool {
    !event.records.is_empty()
        && event
            .records
            .iter()
            .all(|record| matches!(parse_message(record.body.as_deref()), Ok(events) if events.is_empty()))
}

/// The object events of one SQS message body.
pub fn parse_message(body: Option<&str>) -> Result<Vec<ObjectEvent>, String> {
    let body = body.ok_or("the message has no body")?;
    let notification: Notification = serde_json::from_str(body)
        .map_err(|e| format!("the message is not an S3 notification: {e}"))?;
    if notification.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let mut events = Vec::with_capacity(notification.records.len());
    for record in notification.records {
        let kind = if record.event_name.starts_with("ObjectCreated:") {
            EventKind::Created
        } else if record.event_name.starts_with("ObjectRemoved:") {
            EventKind::Removed
        } else {
            continue;
        };
        events.push(ObjectEvent {
            bucket: record.s3.bucket.name,
            key: decode_event_key(&record.s3.object.key)?,
            kind,
        });
    }
    Ok(events)
}

#[cfg(test)]
mod test_event_tests {
    use super::*;
    use aws_lambda_events::sqs::SqsMessage;

    fn batch(bodies: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = bodies
            .iter()
            .map(|body| {
                let mut message = SqsMessage::default();
                message.body = Some(body.to_string());
                message
            })
            .collect();
        event
    }

    const TEST_EVENT: &str = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-21T14:56:27Z","Bucket":"lakeops-dev-raw-123456789012","RequestId":"x","HostId":"y"}"#;
    const PUT: &str = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"t/a.csv"}}}]}"#;

    #[test]
    fn a_batch_of_test_events_needs_no_spec() {
        assert!(only_test_events(&batch(&[TEST_EVENT, TEST_EVENT])));
        assert!(!only_test_events(&batch(&[TEST_EVENT, PUT])));
        assert!(!only_test_events(&batch(&[PUT])));
        assert!(!only_test_events(&batch(&["not json"])));
        assert!(!only_test_events(&batch(&[])));
    }
}
