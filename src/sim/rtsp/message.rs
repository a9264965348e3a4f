//! RTSP 1.0 message framing (RFC 2326 §4, §6, §7, §10.12): requests and
//! interleaved binary data read from a client, responses written back.
//! Everything is bounded, so a hostile client costs at most a few KB.

/// Longest request line plus headers we accept.
pub const MAX_HEAD: usize = 8 * 1024;
/// Longest request body we accept (GET_PARAMETER lists are tiny).
pub const MAX_BODY: usize = 4 * 1024;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub version: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// A header's value; names compare case-insensitively (§4.2).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the start of the input buffer holds.
#[derive(Debug)]
pub enum Item {
    Request(Request),
    /// `$` channel length data (§10.12): RTCP receiver reports from the
    /// client, which we accept and ignore.
    Interleaved,
}

/// Input that cannot be a request: answered with 400 and the connection
/// closed, because we can no longer tell where the next message starts.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("request head longer than {MAX_HEAD} bytes")]
    HeadTooLong,
    #[error("body longer than {MAX_BODY} bytes")]
    BodyTooLong,
    #[error("not an RTSP request line")]
    BadRequestLine,
    #[error("malformed header line")]
    BadHeader,
    #[error("invalid Content-Length")]
    BadContentLength,
}

/// Parses one item from the front of `buf`: `Ok(None)` means more bytes
/// are needed; `Ok(Some((item, n)))` means the item took `n` bytes.
pub fn parse(buf: &[u8]) -> Result<Option<(Item, usize)>, Malformed> {
    if buf.first() == Some(&b'$') {
        if buf.len() < 4 {
            return Ok(None);
        }
        let n = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        return Ok((buf.len() >= n).then_some((Item::Interleaved, n)));
    }
    // Clients may send empty lines between messages (keep-alive habits).
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let buf_rest = &buf[skip..];
    let Some(head_end) = find(buf_rest, b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| find(buf_rest, b"\n\n").map(|i| (i, 2)))
    else {
        return if buf_rest.len() > MAX_HEAD {
            Err(Malformed::HeadTooLong)
        } else {
            Ok(None)
        };
    };
    let (head_len, sep) = head_end;
    if head_len > MAX_HEAD {
        return Err(Malformed::HeadTooLong);
    }
    let head = std::str::from_utf8(&buf_rest[..head_len]).map_err(|_| Malformed::BadRequestLine)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed::BadRequestLine);
    };
    if !method
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Malformed::BadRequestLine);
    }
    let mut headers = Vec::new();
    for l in lines {
        let (name, value) = l.split_once(':').ok_or(Malformed::BadHeader)?;
        let name = name.trim();
        if name.is_empty() || name.contains(' ') {
            return Err(Malformed::BadHeader);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let req = Request {
        method: method.to_string(),
        uri: uri.to_string(),
        version: version.to_string(),
        headers,
    };
    let body_len = match req.header("Content-Length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| Malformed::BadContentLength)?,
    };
    if body_len > MAX_BODY {
        return Err(Malformed::BodyTooLong);
    }
    let total = skip + head_len + sep + body_len;
    Ok((buf.len() >= total).then_some((Item::Request(req), total)))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A response under construction.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn body(mut self, content_type: &'static str, body: Vec<u8>) -> Self {
        self.headers
            .push(("Content-Type", content_type.to_string()));
        self.body = body;
        self
    }
    /// The wire form; `cseq` is echoed when the request had one (§12.17).
    pub fn to_bytes(&self, cseq: Option<&str>) -> Vec<u8> {
        let mut s = format!("RTSP/1.0 {} {}\r\n", self.status, reason(self.status));
        if let Some(c) = cseq {
            s.push_str(&format!("CSeq: {c}\r\n"));
        }
        s.push_str("Server: vgw-sim-rtsp\r\n");
        for (n, v) in &self.headers {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        if !self.body.is_empty() {
            s.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        s.push_str("\r\n");
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reason phrases of RFC 2326 §7.1.1 for the statuses we send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        551 => "Option not supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(buf: &[u8]) -> (Request, usize) {
        match parse(buf) {
            Ok(Some((Item::Request(r), n))) => (r, n),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_request_split_anywhere() {
        let msg = b"OPTIONS rtsp://h/cam/1 RTSP/1.0\r\nCSeq: 3\r\ncseq-x: y\r\n\r\n";
        for cut in 0..msg.len() {
            assert!(matches!(parse(&msg[..cut]), Ok(None)), "cut at {cut}");
        }
        let (r, n) = request(msg);
        assert_eq!(n, msg.len());
        assert_eq!(
            (r.method.as_str(), r.uri.as_str()),
            ("OPTIONS", "rtsp://h/cam/1")
        );
        assert_eq!(r.header("cseq"), Some("3"));
    }

    #[test]
    fn body_is_consumed_with_the_request() {
        let msg = b"GET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 4\r\n\r\nabc\nOPTIONS";
        let (_, n) = request(msg);
        assert_eq!(&msg[n..], b"OPTIONS");
    }

    #[test]
    fn interleaved_data_is_skipped_whole() {
        assert!(matches!(parse(b"$\x01\x00\x03ab"), Ok(None)));
        assert!(matches!(
            parse(b"$\x01\x00\x02abX"),
            Ok(Some((Item::Interleaved, 6)))
        ));
    }

    #[test]
    fn hostile_input_is_refused_within_bounds() {
        assert_eq!(
            parse(b"\x00\x01garbage\r\n\r\n").unwrap_err(),
            Malformed::BadRequestLine
        );
        assert_eq!(
            parse(b"HELLO\r\n\r\n").unwrap_err(),
            Malformed::BadRequestLine
        );
        assert_eq!(
            parse(b"OPTIONS * RTSP/1.0\r\nno colon\r\n\r\n").unwrap_err(),
            Malformed::BadHeader
        );
        let huge = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parse(&huge).unwrap_err(), Malformed::HeadTooLong);
        assert_eq!(
            parse(b"OPTIONS * RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n").unwrap_err(),
            Malformed::BodyTooLong
        );
        assert_eq!(
            parse(b"OPTIONS * RTSP/1.0\r\nContent-Length: -1\r\n\r\n").unwrap_err(),
            Malformed::BadContentLength
        );
    }

    #[test]
    fn response_echoes_cseq_and_sizes_the_body() {
        let r = Response::new(200).body("application/sdp", b"v=0\r\n".to_vec());
        let s = String::from_utf8(r.to_bytes(Some("7"))).unwrap();
        assert!(s.starts_with("RTSP/1.0 200 OK\r\nCSeq: 7\r\n"), "{s}");
        assert!(s.contains("Content-Length: 5\r\n"));
        assert!(s.ends_with("\r\n\r\nv=0\r\n"));
    }
}
