//! What a route answers: a status, headers and a small HTML (or JSON) page.
//! Pages carry a title and a plain message: never an error chain, a stack
//! trace, a token or a code.

/// An HTTP answer, independent of Lambda or axum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// `Location` of a redirect.
    pub location: Option<String>,
    /// A `Set-Cookie` value (the connect flow's browser binding).
    pub set_cookie: Option<String>,
    pub body: String,
}

impl Reply {
    /// Headers every answer carries (no caching of pages that hold a
    /// state; no referrer that could leak the callback's code).
    pub const COMMON_HEADERS: [(&'static str, &'static str); 3] = [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
    ];

    /// An HTML page.
    pub fn page(status: u16, title: &str, message: &str) -> Self {
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            location: None,
            set_cookie: None,
            body: format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                 <title>{t}</title></head>\n<body style=\"font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem\">\
                 <h1>{t}</h1>\n<p>{m}</p>\n</body></html>\n",
                t = escape(title),
                m = escape(message)
            ),
        }
    }

    /// A 302 redirect.
    pub fn redirect(location: String) -> Self {
        Self {
            status: 302,
            content_type: "text/plain; charset=utf-8",
            location: Some(location),
            set_cookie: None,
            body: String::new(),
        }
    }

    /// A JSON answer (the disconnect action).
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            location: None,
            set_cookie: None,
            body: value.to_string(),
        }
    }
}

impl Reply {
    /// The same answer, also setting `cookie`.
    pub fn with_cookie(mut self, cookie: String) -> Self {
        self.set_cookie = Some(cookie);
        self
    }
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_their_text() {
        let p = Reply::page(400, "<b>", "a & \"b\"");
        assert!(p.body.contains("&lt;b&gt;"));
        assert!(p.body.contains("a &amp; &quot;b&quot;"));
        assert!(!p.body.contains("<b>"));
    }
}
