//! The console's pages: one handler each, rendering one template.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;

use super::data::{Cluster, ConfigRow, Group, Quorum, TopicRow};
use super::{Console, PageError, User};

type Page = Result<Response, PageError>;

/// Renders a template (a template that cannot render is a bug: it says so on the page).
pub(crate) fn html(t: &impl Template) -> Html<String> {
    Html(
        t.render()
            .unwrap_or_else(|e| format!("<h1>cannot render the page</h1><pre>{e}</pre>")),
    )
}

fn page(t: &impl Template) -> Page {
    Ok(html(t).into_response())
}

fn bad(m: impl Into<String>) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, m)
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub(crate) nav: &'static str,
    pub(crate) status: u16,
    pub(crate) message: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    nav: &'static str,
    cluster: Cluster,
    quorum: Option<Quorum>,
    quorum_error: String,
    partitions: usize,
    under_replicated: usize,
    offline: usize,
    broker_id: i32,
}

pub(super) async fn overview(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
) -> Page {
    let cluster = c.cluster(&user, None).await?;
    let (quorum, quorum_error) = match c.quorum(&user).await {
        Ok(q) => (Some(q), String::new()),
        Err(e) => (None, e),
    };
    let partitions = cluster.topics.iter().map(|t| t.partitions.len()).sum();
    let under_replicated = cluster.topics.iter().map(|t| t.under_replicated).sum();
    let offline = cluster.topics.iter().map(|t| t.offline).sum();
    page(&Overview {
        nav: "overview",
        broker_id: c.broker.id(),
        cluster,
        quorum,
        quorum_error,
        partitions,
        under_replicated,
        offline,
    })
}

#[derive(Template)]
#[template(path = "topics.html")]
struct Topics {
    nav: &'static str,
    topics: Vec<TopicRow>,
    message: String,
    error: String,
}

/// `?created=` / `?deleted=` / `?error=` notices after a form.
#[derive(Debug, Deserialize, Default)]
pub(super) struct Notice {
    #[serde(default)]
    created: String,
    #[serde(default)]
    deleted: String,
    #[serde(default)]
    altered: String,
    #[serde(default)]
    error: String,
}

pub(super) async fn topics(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
    Query(n): Query<Notice>,
) -> Page {
    let cluster = c.cluster(&user, None).await?;
    let message = if !n.created.is_empty() {
        format!("Topic '{}' created.", n.created)
    } else if !n.deleted.is_empty() {
        format!("Topic '{}' deleted.", n.deleted)
    } else {
        String::new()
    };
    page(&Topics {
        nav: "topics",
        topics: cluster.topics,
        message,
        error: n.error,
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct NewTopic {
    name: String,
    partitions: String,
    replication_factor: String,
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) async fn create_topic(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
    Form(f): Form<NewTopic>,
) -> Page {
    let name = f.name.trim();
    let parse =
        |v: &str, what: &str| -> Result<i32, PageError> {
            match v.trim() {
                "" => Ok(-1),
                v => v.parse::<i32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    bad(format!("{what} must be a positive whole number, not {v:?}"))
                }),
            }
        };
    let partitions = parse(&f.partitions, "partitions")?;
    let rf = parse(&f.replication_factor, "replication factor")?;
    let rf = i16::try_from(rf).map_err(|_| bad("replication factor is too large"))?;
    let to = match c.create_topic(&user, name, partitions, rf).await {
        Ok(()) => format!("/topics?created={}", query_escape(name)),
        Err(e) => format!(
            "/topics?error={}",
            query_escape(&format!("cannot create '{name}': {e}"))
        ),
    };
    Ok(Redirect::to(&to).into_response())
}

pub(super) async fn delete_topic(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
    Path(name): Path<String>,
) -> Page {
    let to = match c.delete_topic(&user, &name).await {
        Ok(()) => format!("/topics?deleted={}", query_escape(&name)),
        Err(e) => format!(
            "/topics?error={}",
            query_escape(&format!("cannot delete '{name}': {e}"))
        ),
    };
    Ok(Redirect::to(&to).into_response())
}

#[derive(Template)]
#[template(path = "topic.html")]
struct TopicPage {
    nav: &'static str,
    topic: TopicRow,
    configs: Vec<ConfigRow>,
    message: String,
    error: String,
}

pub(super) async fn topic(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
    Path(name): Path<String>,
    Query(n): Query<Notice>,
) -> Page {
    let cluster = c.cluster(&user, Some(&name)).await?;
    let mut topic = cluster
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("no topic '{name}'")))?;
    c.fill_offsets(&user, &mut topic).await;
    let (configs, error) = match c.topic_configs(&user, &name).await {
        Ok(configs) => (configs, n.error),
        Err(e) => (Vec::new(), format!("cannot describe the configs: {e}")),
    };
    page(&TopicPage {
        nav: "topics",
        topic,
        configs,
        message: if n.altered.is_empty() {
            String::new()
        } else {
            format!("Config '{}' altered.", n.altered)
        },
        error,
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct AlterConfig {
    key: String,
    #[serde(default)]
    value: String,
}

pub(super) async fn alter_config(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
    Path(name): Path<String>,
    Form(f): Form<AlterConfig>,
) -> Page {
    let base = format!("/topics/{}", query_escape(&name));
    let key = f.key.trim();
    let to = match c
        .alter_topic_config(&user, &name, key, f.value.trim())
        .await
    {
        Ok(()) => format!("{base}?altered={}", query_escape(key)),
        Err(e) => format!(
            "{base}?error={}",
            query_escape(&format!("cannot alter {key}: {e}"))
        ),
    };
    Ok(Redirect::to(&to).into_response())
}

/// The message browser's query.
#[derive(Debug, Deserialize)]
pub(super) struct Browse {
    #[serde(default)]
    partition: Option<i32>,
    #[serde(default)]
    offset: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    view: Option<String>,
}

/// One record as the browser shows it.
struct MessageRow {
    offset: i64,
    timestamp: String,
    key: String,
    value: String,
    headers: String,
}

/// A partition in the browser's choice.
struct PartitionOption {
    value: i32,
    selected: bool,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct Messages {
    nav: &'static str,
    topic: String,
    partitions: Vec<PartitionOption>,
    partition: i32,
    offset: i64,
    timestamp: String,
    view: String,
    high_watermark: i64,
    next_offset: i64,
    rows: Vec<MessageRow>,
    error: String,
}

/// Records shown per page.
const PAGE_RECORDS: usize = 50;

/// Renders bytes in the chosen view: UTF-8 (lossy), JSON (pretty when it parses) or hex.
fn render_bytes(b: Option<&[u8]>, view: &str) -> String {
    let Some(b) = b else {
        return "(null)".into();
    };
    match view {
        "hex" => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
        "json" => match serde_json::from_slice::<serde_json::Value>(b) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        },
        _ => String::from_utf8_lossy(b).into_owned(),
    }
}

fn format_time(ms: i64) -> String {
    // UTC, as yyyy-mm-dd hh:mm:ss.mmm (civil-from-days, no time zone database needed).
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (h, m, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}.{milli:03} UTC")
}

pub(super) async fn messages(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
    Path(topic): Path<String>,
    Query(q): Query<Browse>,
) -> Page {
    let cluster = c.cluster(&user, Some(&topic)).await?;
    let row = cluster
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("no topic '{topic}'")))?;
    let partitions: Vec<i32> = row.partitions.iter().map(|p| p.index).collect();
    let partition = q.partition.unwrap_or(0);
    if !partitions.contains(&partition) {
        return Err(bad(format!("'{topic}' has no partition {partition}")));
    }
    let view = match q.view.as_deref() {
        Some(v @ ("json" | "hex")) => v.to_string(),
        _ => "utf8".to_string(),
    };
    let timestamp = q.timestamp.clone().unwrap_or_default();
    let mut error = String::new();
    let offset = match (q.offset.as_deref().map(str::trim), timestamp.trim()) {
        (_, t) if !t.is_empty() => {
            let ms: i64 = t.parse().map_err(|_| {
                bad(format!(
                    "timestamp must be milliseconds since the epoch, not {t:?}"
                ))
            })?;
            match c.offset_for_time(&user, &topic, partition, ms).await {
                Ok(o) if o >= 0 => o,
                Ok(_) => {
                    error = "no record at or after that time".into();
                    0
                }
                Err(e) => {
                    error = e;
                    0
                }
            }
        }
        (Some(o), _) if !o.is_empty() => o
            .parse()
            .map_err(|_| bad(format!("offset must be a whole number, not {o:?}")))?,
        _ => 0,
    };
    let (rows, high_watermark) = match c
        .fetch(&user, &topic, partition, offset, PAGE_RECORDS)
        .await
    {
        Ok((records, hw)) => (
            records
                .iter()
                .map(|r| MessageRow {
                    offset: r.offset,
                    timestamp: format_time(r.timestamp),
                    key: render_bytes(r.key.as_deref(), &view),
                    value: render_bytes(r.value.as_deref(), &view),
                    headers: r
                        .headers
                        .iter()
                        .map(|(k, v)| format!("{}={}", k, render_bytes(v.as_deref(), &view)))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect::<Vec<_>>(),
            hw,
        ),
        Err(e) => {
            error = e;
            (Vec::new(), -1)
        }
    };
    let next_offset = rows.last().map_or(offset, |r| r.offset + 1);
    page(&Messages {
        nav: "topics",
        topic,
        partitions: partitions
            .iter()
            .map(|p| PartitionOption {
                value: *p,
                selected: *p == partition,
            })
            .collect(),
        partition,
        offset,
        timestamp,
        view,
        high_watermark,
        next_offset,
        rows,
        error,
    })
}

/// A group in the list.
struct GroupRow {
    id: String,
    state: String,
    protocol_type: String,
    lag: String,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct Groups {
    nav: &'static str,
    groups: Vec<GroupRow>,
    broker_id: i32,
}

pub(super) async fn groups(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
) -> Page {
    let listed = c.list_groups(&user).await?;
    let lag = crate::metrics::consumer_lag(&c.broker);
    let groups = listed
        .into_iter()
        .map(|(id, state, protocol_type)| {
            let l: Vec<_> = lag.iter().filter(|l| l.group == id).collect();
            GroupRow {
                lag: if l.is_empty() {
                    "-".into()
                } else {
                    l.iter().map(|l| l.lag()).sum::<i64>().to_string()
                },
                id,
                state,
                protocol_type,
            }
        })
        .collect();
    page(&Groups {
        nav: "groups",
        groups,
        broker_id: c.broker.id(),
    })
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    nav: &'static str,
    group: Group,
    total_lag: i64,
}

pub(super) async fn group(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
    Path(id): Path<String>,
) -> Page {
    let group = c.describe_group(&user, &id).await.map_err(|e| {
        if e.contains("NOT_COORDINATOR") {
            PageError::new(
                StatusCode::NOT_FOUND,
                format!("{e}: this broker does not coordinate the group; open the console of its coordinator"),
            )
        } else {
            PageError::from(e)
        }
    })?;
    let total_lag = group
        .offsets
        .iter()
        .filter_map(|o| o.lag.parse::<i64>().ok())
        .sum();
    page(&GroupPage {
        nav: "groups",
        group,
        total_lag,
    })
}

/// A plot's series: x (seconds since the epoch) and one or more y columns, as uPlot takes.
#[derive(Debug, serde::Serialize)]
pub(super) struct Series {
    labels: Vec<&'static str>,
    data: Vec<Vec<f64>>,
}

fn rates_series(points: Vec<crate::history::Rates>) -> Series {
    Series {
        labels: vec!["bytes in/s", "bytes out/s", "records in/s"],
        data: vec![
            points.iter().map(|p| p.at_ms as f64 / 1000.0).collect(),
            points.iter().map(|p| p.bytes_in).collect(),
            points.iter().map(|p| p.bytes_out).collect(),
            points.iter().map(|p| p.messages_in).collect(),
        ],
    }
}

/// Whether `user` may describe `resource` (the JSON series are authorised as the pages are).
fn may_describe(
    c: &Console,
    user: &User,
    resource: odradek_metadata::acl::ResourceType,
    name: &str,
) -> Result<(), PageError> {
    let ctx = c.context(user, kafka_protocol::messages::ApiKey::Metadata, 0);
    let image = c.broker.image();
    if c.broker.authorized(
        &ctx,
        &image,
        odradek_metadata::acl::AclOperation::Describe,
        resource,
        name,
    ) {
        Ok(())
    } else {
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            format!("not authorized to describe {name}"),
        ))
    }
}

pub(super) async fn topic_rates(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
    Path(name): Path<String>,
) -> Result<Json<Series>, PageError> {
    may_describe(&c, &user, odradek_metadata::acl::ResourceType::Topic, &name)?;
    Ok(Json(rates_series(c.history.rates(&name))))
}

pub(super) async fn total_rates(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
) -> Result<Json<Series>, PageError> {
    may_describe(
        &c,
        &user,
        odradek_metadata::acl::ResourceType::Cluster,
        "kafka-cluster",
    )?;
    Ok(Json(rates_series(c.history.total_rates())))
}

pub(super) async fn group_lag(
    State(c): State<Arc<Console>>,
    Extension(user): Extension<User>,
    Path(id): Path<String>,
) -> Result<Json<Series>, PageError> {
    may_describe(&c, &user, odradek_metadata::acl::ResourceType::Group, &id)?;
    let points = c.history.lag(&id);
    Ok(Json(Series {
        labels: vec!["lag (records)"],
        data: vec![
            points.iter().map(|(t, _)| *t as f64 / 1000.0).collect(),
            points.iter().map(|(_, l)| *l as f64).collect(),
        ],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            format_time(1_700_000_000_123),
            "2023-11-14 22:13:20.123 UTC"
        );
    }

    #[test]
    fn bytes_render_in_each_view() {
        assert_eq!(render_bytes(Some(b"{\"a\":1}"), "json"), "{\n  \"a\": 1\n}");
        assert_eq!(render_bytes(Some(b"hi"), "hex"), "68 69");
        assert_eq!(render_bytes(Some(b"not json"), "json"), "not json");
        assert_eq!(render_bytes(None, "utf8"), "(null)");
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
    }
}
