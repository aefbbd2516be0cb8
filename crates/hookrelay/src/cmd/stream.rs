//! Following a server's event stream (`hookrelay listen`, `hookrelay tail`): reads server-sent events from a
//! long-lived response, and reconnects when the stream ends (the server ends each one after a few minutes so that
//! tokens are checked again) or breaks (a server restart), waiting longer after each failure in a row.

use std::time::Duration;

use anyhow::{Context, bail};

use super::client::Api;

/// One server-sent event: its name and its data (JSON for hookrelay's streams).
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest event accepted; hookrelay's largest (a delivery) is its payload plus headers.
const MAX_EVENT_BYTES: usize = 8 << 20;

/// Calls `on_event` with every event of the stream at `segments` (GET, with `query`), reconnecting for ever;
/// returns only when `on_event` returns an error, or the server refuses the request (a 4xx says what to fix).
pub async fn follow<F, Fut>(api: &Api, segments: &[&str], query: &[(&str, &str)], mut on_event: F) -> anyhow::Result<()>
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut failures = 0u32;
    loop {
        let request = api.stream(segments, query)?;
        let outcome = match request.send().await {
            Ok(response) if response.status().is_client_error() => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let detail = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|body| body["detail"].as_str().map(str::to_owned))
                    .unwrap_or(text);
                bail!("hookrelay answered {status}: {detail}");
            }
            Ok(response) if !response.status().is_success() => {
                Err(anyhow::anyhow!("hookrelay answered {}", response.status()))
            }
            Ok(mut response) => {
                let mut parser = Parser::default();
                loop {
                    match response.chunk().await {
                        Ok(Some(bytes)) => {
                            failures = 0;
                            for event in parser.push(&bytes)? {
                                on_event(event).await?;
                            }
                        }
                        Ok(None) => break Ok(()),
                        Err(err) => break Err(anyhow::Error::new(err).context("the stream broke")),
                    }
                }
            }
            Err(err) => Err(anyhow::Error::new(err).context(format!("cannot reach hookrelay at {}", api.base()))),
        };
        if let Err(err) = outcome {
            failures += 1;
            let wait = Duration::from_millis(500u64.saturating_mul(1 << failures.min(5))).min(MAX_BACKOFF);
            eprintln!("{err:#}; reconnecting in {} s", wait.as_secs_f32());
            tokio::time::sleep(wait).await;
        }
    }
}

/// Splits a `text/event-stream` body into events (`event:` and `data:` lines, ended by a blank line; comments
/// and other fields ignored).
#[derive(Default)]
struct Parser {
    buffer: Vec<u8>,
}

impl Parser {
    fn push(&mut self, bytes: &[u8]) -> anyhow::Result<Vec<Event>> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = find_blank_line(&self.buffer) {
            let block: Vec<u8> = self.buffer.drain(..end.0 + end.1).collect();
            let text = String::from_utf8(block[..end.0].to_vec()).context("the stream sent text that is not UTF-8")?;
            let mut event = Event { name: "message".into(), data: String::new() };
            let mut has_data = false;
            for line in text.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event.name = value.to_owned(),
                    "data" => {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
            if has_data {
                events.push(event);
            }
        }
        if self.buffer.len() > MAX_EVENT_BYTES {
            bail!("the stream sent an event larger than {MAX_EVENT_BYTES} bytes");
        }
        Ok(events)
    }
}

/// Where the first blank line ends an event: (length of the event's lines, length of the separator).
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    (0..buffer.len()).find_map(|i| {
        if buffer[i..].starts_with(b"\n\n") {
            Some((i, 2))
        } else if buffer[i..].starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_at_blank_lines_whatever_the_chunks() {
        let stream = b": keep-alive\n\nevent: ready\ndata: {\"a\":1}\n\nevent: delivery\ndata: x\ndata: y\n\n";
        for chunk_size in [1, 3, 7, stream.len()] {
            let mut parser = Parser::default();
            let mut events = Vec::new();
            for chunk in stream.chunks(chunk_size) {
                events.extend(parser.push(chunk).expect("valid"));
            }
            assert_eq!(
                events,
                vec![
                    Event { name: "ready".into(), data: "{\"a\":1}".into() },
                    Event { name: "delivery".into(), data: "x\ny".into() },
                ],
                "chunks of {chunk_size}"
            );
        }
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut parser = Parser::default();
        assert!(parser.push(&vec![b'x'; MAX_EVENT_BYTES + 1]).is_err());
    }
}
