//! Calls to SSP over HTTP, and how their answers are counted.

use super::*;

pub(crate) enum Answer {
    Ok(Json),
    Status(u16, String),
    Transport(String, String),
}

impl Answer {
    pub(crate) fn class(&self) -> String {
        match self {
            Answer::Ok(_) => "200".to_owned(),
            Answer::Status(status, body) => {
                let code = serde_json::from_str::<Json>(body)
                    .ok()
                    .and_then(|b| b["code"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                format!("{status} {code}")
            }
            Answer::Transport(class, _) => class.clone(),
        }
    }

    pub(crate) fn detail(&self) -> String {
        match self {
            Answer::Ok(body) => body.to_string(),
            Answer::Status(_, body) => body.clone(),
            Answer::Transport(_, e) => e.clone(),
        }
    }
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Answer {
    match request.bearer_auth(SECRET).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            if status == 200 {
                Answer::Ok(serde_json::from_str(&body).unwrap_or(Json::Null))
            } else {
                Answer::Status(status, body)
            }
        }
        Err(error) => {
            let class = if error.is_connect() {
                "connect"
            } else if error.is_timeout() {
                "timeout"
            } else {
                "transport"
            };
            Answer::Transport(class.to_owned(), format!("{error:?}"))
        }
    }
}

pub(crate) async fn post(ctx: &Ctx, path: &str, body: &Json) -> Answer {
    send(ctx.http.post(format!("{}{path}", ctx.ssp_base)).json(body)).await
}

pub(crate) async fn get(ctx: &Ctx, path: &str) -> Answer {
    send(ctx.http.get(format!("{}{path}", ctx.ssp_base))).await
}

pub(crate) fn record(ctx: &Ctx, kind: &'static str, answer: &Answer) -> bool {
    match answer {
        Answer::Ok(_) => {
            ctx.stats.ok(kind);
            true
        }
        other => {
            ctx.stats.fail(kind, &other.class(), &other.detail());
            false
        }
    }
}
