//! WATCH: newline-delimited JSON events, replay from a resourceVersion,
//! bookmarks, `sendInitialEvents` streaming lists, and 410 Gone as an ERROR
//! event when the requested version is older than the log.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::cluster::Cluster;
use crate::errors::ApiError;
use crate::handlers::read::{Filter, View, partial};
use crate::objects::{is_presented, present};
use crate::request::{Query, Target};
use crate::store::{Event, EventType, meta_str};
use crate::table;

/// How often an idle watch with bookmarks enabled gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

struct Watcher {
    t: Target,
    filter: Filter,
    q: Query,
    view: View,
    tx: mpsc::Sender<bytes::Bytes>,
}

impl Watcher {
    fn render(&self, obj: &Value) -> Value {
        let o = present(obj, &self.t.rt, &self.t.version).into_owned();
        match self.view {
            View::Table => {
                table::table(&self.t.rt, &[o], meta_str(obj, "resourceVersion"), &self.q)
            }
            View::Metadata => partial(&o),
            View::Full => o,
        }
    }

    async fn send(&self, kind: &str, object: Value) -> bool {
        let mut line = json!({"type": kind, "object": object}).to_string();
        line.push('\n');
        self.tx.send(bytes::Bytes::from(line)).await.is_ok()
    }

    async fn bookmark(&self, rv: u64, initial_end: bool) -> bool {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.t.rt.kind, "apiVersion": self.t.api_version(), "metadata": meta});
        self.send("BOOKMARK", obj).await
    }

    /// Sends one store event if it concerns this watch; false when the client is gone.
    async fn event(&self, ev: &Event) -> bool {
        if ev.resource != self.t.rt.key() {
            return true;
        }
        let now = self.filter.matches(&ev.object);
        let before = ev.old.as_ref().is_some_and(|o| self.filter.matches(o));
        let kind = match ev.kind {
            EventType::Added if now => "ADDED",
            EventType::Modified if now && before => "MODIFIED",
            EventType::Modified if now => "ADDED",
            EventType::Modified if before => "DELETED",
            EventType::Deleted if before || now => "DELETED",
            _ => return true,
        };
        if self.view == View::Full && is_presented(&ev.object, &self.t.rt, &self.t.version) {
            let obj = ev
                .json
                .get_or_init(|| bytes::Bytes::from(ev.object.to_string()));
            let mut line = Vec::with_capacity(obj.len() + 32);
            line.extend_from_slice(b"{\"type\":\"");
            line.extend_from_slice(kind.as_bytes());
            line.extend_from_slice(b"\",\"object\":");
            line.extend_from_slice(obj);
            line.extend_from_slice(b"}\n");
            return self.tx.send(bytes::Bytes::from(line)).await.is_ok();
        }
        self.send(kind, self.render(&ev.object)).await
    }
}

pub(crate) async fn serve(
    cluster: Arc<Cluster>,
    t: Target,
    q: &Query,
    view: View,
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(&t, q)?;
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    let rv_param = q.get("resourceVersion").unwrap_or("").to_string();
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(1024);
    let watcher = Watcher {
        t,
        filter,
        q: q.clone(),
        view,
        tx,
    };
    let key = watcher.t.rt.key();
    let initial_state = send_initial.unwrap_or(rv_param.is_empty() || rv_param == "0");
    let mut gone: Option<(u64, u64)> = None;
    let (initial, start) = if initial_state {
        let (items, start) = cluster
            .store
            .snapshot_and_subscribe(&key, watcher.t.namespace.as_deref());
        (items, Some(start))
    } else {
        // No version and no initial events: start from now.
        let since: u64 = if rv_param.is_empty() || rv_param == "0" {
            u64::MAX
        } else {
            rv_param.parse().unwrap_or(0)
        };
        match cluster.store.watch_from(Some(&key), since) {
            Some(s) => (vec![], Some(s)),
            None => {
                gone = Some((since, cluster.store.oldest_rv()));
                (vec![], None)
            }
        }
    };
    let mut shutdown = cluster.shutdown.clone();
    tokio::spawn(async move {
        let Some(start) = start else {
            if let Some((asked, oldest)) = gone {
                let status =
                    ApiError::gone(format!("too old resource version: {asked} ({oldest})"))
                        .status();
                watcher.send("ERROR", status).await;
            }
            return;
        };
        let mut last = start.rv;
        for obj in initial.iter().filter(|o| watcher.filter.matches(o)) {
            if !watcher.send("ADDED", watcher.render(obj)).await {
                return;
            }
        }
        if send_initial == Some(true) && bookmarks && !watcher.bookmark(start.rv, true).await {
            return;
        }
        for ev in &start.replay {
            last = last.max(ev.rv);
            if !watcher.event(ev).await {
                return;
            }
        }
        let mut live = start.live;
        let deadline = timeout.map(|d| tokio::time::Instant::now() + d);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            let sleep_until = deadline.unwrap_or_else(|| {
                tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600)
            });
            tokio::select! {
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last { continue; }
                        last = ev.rv;
                        if !watcher.event(&ev).await { return; }
                    }
                    // A watcher too slow to keep up is closed; clients re-list.
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    if !watcher.bookmark(last, false).await { return; }
                }
                _ = tokio::time::sleep_until(sleep_until) => return,
                _ = shutdown.changed() => return,
                _ = watcher.tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok((
        StatusCode::OK,
        [("content-type", "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}
