//! The diagnostics page on the operator's metrics port: read over HTTP, and
//! painted by headless Chromium (a screenshot checked for the route table).

use legate_tests::browser::Browser;
use legate_tests::http::{HttpClient, Response};
use legate_tests::net::eventually;
use legate_tests::operator::SharedOperator;
use legate_tests::stage::{PATIENCE, Stage};
use serde_json::json;

/// The page of the stage's Gateway.
fn page_url(stage: &Stage) -> String {
    let operator = SharedOperator::get(stage.env.control_plane);
    format!(
        "http://{}/diagnostics/{}/edge",
        operator.metrics, stage.env.namespace
    )
}

/// The owners of the route rows, in page order.
fn owners(html: &str) -> Vec<String> {
    html.split("<td class=\"owner\">")
        .skip(1)
        .map(|rest| rest.split("</td>").next().unwrap_or_default().to_string())
        .collect()
}

/// The page, once `ready` says it shows what the test waited for in the
/// API server (the operator's watch may be a moment behind it).
async fn page_when(stage: &Stage, what: &str, ready: impl Fn(&str) -> bool) -> Response {
    let url = page_url(stage);
    eventually(&format!("{url} to show {what}"), PATIENCE, || async {
        let r = HttpClient::http1().get(&url, None).await.ok()?;
        (r.status == 200 && ready(&r.text())).then_some(r)
    })
    .await
}

#[tokio::test]
async fn the_diagnostics_page_shows_the_route_table_conditions_and_the_last_nack() {
    let stage = Stage::new().await;
    let ns = stage.env.namespace.clone();
    // Prefixes of different lengths: Envoy tries the longest first.
    for (name, prefix) in [("short", "/a/"), ("long", "/a/b/")] {
        stage
            .mapping(name, json!({ "prefix": prefix, "service": "quote" }))
            .await;
    }
    stage
        .mapping(
            "hostile",
            json!({ "prefix": "/hh/", "service": "quote", "headers": { "x-test": "<script>alert(1)</script>" } }),
        )
        .await;
    stage
        .mapping("lost", json!({ "prefix": "/lost/", "service": "missing" }))
        .await;
    for name in ["short", "long", "hostile"] {
        stage.programmed_now("Mapping", name).await;
    }
    let unresolved = stage.condition("Mapping", "lost", "ResolvedRefs", "False").await;
    // Valid RE2 that Envoy refuses (regex program size): a NACK.
    stage
        .mapping(
            "greedy",
            json!({ "pathRegex": "^/(a{1,50}b{1,50}c{1,50}){1,10}$", "service": "quote" }),
        )
        .await;
    stage
        .condition_reason("Mapping", "greedy", "Programmed", "Rejected")
        .await;

    let unresolved_badge = format!(
        "ResolvedRefs=False ({})",
        unresolved["reason"].as_str().unwrap_or_default()
    );
    let response = page_when(&stage, "the NACK and the missing Service", |html| {
        html.contains("Mapping ") && html.contains("program size") && html.contains(&unresolved_badge)
    })
    .await;
    assert_eq!(response.header("content-type"), Some("text/html; charset=utf-8"));
    let html = response.text();

    // The route table: one virtual host (`*`), longest prefix first; the
    // refused Mapping is out of the configuration.
    assert_eq!(
        owners(&html),
        ["lost", "long", "hostile", "short"].map(|n| format!("Mapping {ns}/{n}")),
        "{html}"
    );
    assert!(html.contains("data-host=\"*\""), "{html}");
    assert!(
        html.contains("prefix /hh/ header x-test = &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"),
        "the header match is shown, escaped: {html}"
    );
    assert!(
        !html.contains("<script>"),
        "nothing the user wrote becomes markup: {html}"
    );
    assert!(html.contains(&unresolved_badge), "{html}");
    assert!(html.contains(&format!("→ {ns}/quote:80")), "{html}");

    // The last NACK: when, which Envoy, which type, Envoy's words, whom it blamed.
    let nack = html.split("id=\"last-nack\"").nth(1).unwrap_or_default();
    for expected in [
        "edge-local-1".to_string(),
        "program size".to_string(),
        format!("Mapping {ns}/greedy (generation 1)"),
    ] {
        assert!(nack.contains(&expected), "the last NACK lacks {expected}: {nack}");
    }
    assert!(nack.contains("RDS") || nack.contains("VHDS"), "{nack}");

    // Every object's conditions, the rejected one's with Envoy's reason.
    let objects = html.split("id=\"objects\"").nth(1).unwrap_or_default();
    // (Other tests' namespaces may add objects attached nowhere.)
    let ours = objects
        .split("<tr class=\"object\">")
        .filter(|row| row.contains(&format!("Mapping {ns}/")))
        .count();
    assert_eq!(ours, 5, "{objects}");
    let greedy = objects
        .split("<tr class=\"object\">")
        .find(|row| row.contains(&format!("Mapping {ns}/greedy")))
        .unwrap_or_default();
    assert!(
        greedy.contains("<span class=\"False\">False</span> Rejected"),
        "{greedy}"
    );

    // The index links it; nothing but GET is served; an unknown Gateway is a 404.
    let operator = SharedOperator::get(stage.env.control_plane);
    let index = HttpClient::http1()
        .get(&format!("http://{}/diagnostics", operator.metrics), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(index.status, 200);
    assert!(
        index
            .text()
            .contains(&format!("<a href=\"/diagnostics/{ns}/edge\">{ns}/edge</a>")),
        "{}",
        index.text()
    );
    let post = hyper::Request::post(page_url(&stage))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap_or_else(|e| panic!("{e}"));
    let post = HttpClient::http1()
        .send(post)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(post.status, 405, "the page is read-only");
    let unknown = HttpClient::http1()
        .get(
            &format!("http://{}/diagnostics/{ns}/nope", operator.metrics),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unknown.status, 404);
}

/// Pixels darker than the page's borders (#ccc) and background: text.
fn dark_pixels(image: &png_view::Image, rect: &legate_tests::browser::Rect) -> usize {
    // Inside the cell's borders and padding, so that a border is not text.
    let inset = 3.0;
    let (x0, y0) = ((rect.x + inset) as u32, (rect.y + inset) as u32);
    let (x1, y1) = (
        (rect.x + rect.width - inset) as u32,
        (rect.y + rect.height - inset) as u32,
    );
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| image.luma(x, y).is_some_and(|l| l < 128))
        .count()
}

#[tokio::test]
async fn the_diagnostics_page_paints_its_route_table_in_headless_chromium() {
    let stage = Stage::new().await;
    let ns = stage.env.namespace.clone();
    for (name, prefix) in [("one", "/1/"), ("two", "/22/"), ("three", "/333/")] {
        stage
            .mapping(name, json!({ "prefix": prefix, "service": "quote" }))
            .await;
        stage.programmed_now("Mapping", name).await;
    }
    page_when(&stage, "three routes", |html| {
        html.matches("<tr class=\"route\">").count() == 3 && !html.contains("Programmed?")
    })
    .await;

    let browser = Browser::start().await.unwrap_or_else(|e| panic!("{e}"));
    browser
        .open(&page_url(&stage))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = browser
        .find_all("tr.route")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 3, "one row per route");
    let owners = browser
        .find_all("tr.route td.owner")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(owners.len(), 3);
    let mut owner_rects = Vec::new();
    let mut last_y = f64::MIN;
    for (row, owner) in rows.iter().zip(&owners) {
        assert!(
            browser.displayed(row).await.unwrap_or_else(|e| panic!("{e}")),
            "the row is displayed"
        );
        let rect = browser.rect(row).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            rect.width > 0.0 && rect.height > 0.0,
            "the row has a size: {rect:?}"
        );
        assert!(rect.y > last_y, "rows go down the page in order");
        last_y = rect.y;
        owner_rects.push((
            browser.text(owner).await.unwrap_or_else(|e| panic!("{e}")),
            browser.rect(owner).await.unwrap_or_else(|e| panic!("{e}")),
        ));
    }
    let names: Vec<&str> = owner_rects.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        ["three", "two", "one"].map(|n| format!("Mapping {ns}/{n}")),
        "longest prefix first"
    );

    let shot = browser.screenshot().await.unwrap_or_else(|e| panic!("{e}"));
    let path = std::env::temp_dir().join(format!("legate-diagnostics-{}.png", std::process::id()));
    let _ = std::fs::write(&path, &shot);
    let image = png_view::Image::decode(&shot).unwrap_or_else(|e| panic!("{e}"));
    for (owner, rect) in &owner_rects {
        assert!(
            rect.x + rect.width <= f64::from(image.width) && rect.y + rect.height <= f64::from(image.height),
            "{owner}'s cell {rect:?} is inside the {}x{} screenshot",
            image.width,
            image.height
        );
        let painted = dark_pixels(&image, rect);
        assert!(
            painted >= 20,
            "{owner}: only {painted} dark pixels in its cell {rect:?}: its text was not painted (screenshot: {})",
            path.display()
        );
    }
}

/// A decoded screenshot, read a pixel at a time.
mod png_view {
    pub struct Image {
        pub width: u32,
        pub height: u32,
        channels: usize,
        line_size: usize,
        pixels: Vec<u8>,
    }

    impl Image {
        pub fn decode(bytes: &[u8]) -> Result<Image, String> {
            let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
            decoder.set_transformations(png::Transformations::normalize_to_color8());
            let mut reader = decoder.read_info().map_err(|e| format!("not a PNG: {e}"))?;
            let size = reader
                .output_buffer_size()
                .ok_or_else(|| "the PNG is too large".to_string())?;
            let mut pixels = vec![0; size];
            let frame = reader
                .next_frame(&mut pixels)
                .map_err(|e| format!("decoding the PNG: {e}"))?;
            let channels = frame.color_type.samples();
            pixels.truncate(frame.buffer_size());
            Ok(Image {
                width: frame.width,
                height: frame.height,
                channels,
                line_size: frame.line_size,
                pixels,
            })
        }

        /// Brightness 0 (black) to 255 (white) of pixel (x, y).
        pub fn luma(&self, x: u32, y: u32) -> Option<u8> {
            if x >= self.width || y >= self.height {
                return None;
            }
            let at = y as usize * self.line_size + x as usize * self.channels;
            let p = self.pixels.get(at..at + self.channels.min(3))?;
            let (r, g, b) = match p {
                [r, g, b] => (*r, *g, *b),
                [gray, ..] => (*gray, *gray, *gray),
                [] => return None,
            };
            Some(((u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000) as u8)
        }
    }
}
