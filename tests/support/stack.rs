//! The handlers over a real store and the push stand-in, driven the way API Gateway drives them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use aws_config::BehaviorVersion;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_sdk_dynamodb::config::{Credentials, Region};
use lambda_runtime::{Context, LambdaEvent};
use protocol::BuiltIn;
use serde_json::Value;
use shared::app::Events;
use shared::lambda::init::AwsGateway;
use shared::spread::{Job, Set};
use shared::store::now_millis;
use shared::Config;

use crate::fault_proxy::FaultProxy;
use crate::{dynamodb, events, push_sink::PushSink};

/// A DynamoDB item, as the tests inspect it.
pub use shared::store::dynamodb::Item;

static TABLES: AtomicUsize = AtomicUsize::new(0);

/// One service: its own table on the shared server, its own push stand-in.
///
/// Driven as API Gateway drives the functions: `connect` runs the `$connect` authorizer first, and
/// every later event of that connection carries the context it returned. The functions run the
/// built-in protocol, or the application given to [`Stack::with_app`].
pub struct Stack<A = BuiltIn> {
    pub gateway: AwsGateway,
    pub app: A,
    pub sink: PushSink,
    requests: AtomicUsize,
    authorized: Mutex<HashMap<String, HashMap<String, Value>>>,
}

impl Stack {
    /// A stack with the default configuration.
    pub async fn start() -> Stack {
        Self::with_config(|_| {}).await
    }

    /// A stack whose configuration `adjust` may change (the table and endpoints are set first).
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Stack {
        Stack::new_table(&table_name(), adjust, BuiltIn).await
    }

    /// A stack that reaches the DynamoDB-compatible server through a [`FaultProxy`], which can
    /// cut it, lose answers, inject conflicts and count requests; `adjust` as for
    /// [`Stack::with_config`].
    pub async fn behind_proxy(adjust: impl FnOnce(&mut Config)) -> (FaultProxy, Stack) {
        Stack::app_behind_proxy(BuiltIn, adjust).await
    }

    /// A view of the same table straight on the DynamoDB-compatible server, for a test whose
    /// stack reaches it through a proxy that may be cut.
    pub async fn inspector(stack: &Stack) -> Stack {
        Stack::on_table(stack.gateway.store.table(), |_| {}).await
    }

    /// Another Lambda environment of the same service: the same table and settings, and nothing
    /// that the first one keeps in memory.
    pub async fn another_environment(stack: &Stack, adjust: impl FnOnce(&mut Config)) -> Stack {
        let other = Stack::on_table(stack.gateway.store.table(), adjust).await;
        *other.authorized() = stack.authorized().clone();
        other
    }

    async fn on_table(table: &str, adjust: impl FnOnce(&mut Config)) -> Stack {
        Stack::on_table_with(table, adjust, BuiltIn).await
    }
}

impl<A: Events> Stack<A> {
    /// A stack whose functions run `app`, on a table of its own.
    pub async fn with_app(app: A) -> Stack<A> {
        Stack::new_table(&table_name(), |_| {}, app).await
    }

    /// [`Stack::with_app`] with settings of its own.
    pub async fn with_app_and_config(app: A, adjust: impl FnOnce(&mut Config)) -> Stack<A> {
        Stack::new_table(&table_name(), adjust, app).await
    }

    /// [`Stack::behind_proxy`], for a stack whose functions run `app`.
    pub async fn app_behind_proxy(
        app: A,
        adjust: impl FnOnce(&mut Config),
    ) -> (FaultProxy, Stack<A>) {
        let proxy = FaultProxy::start(dynamodb::endpoint()).await;
        let endpoint = proxy.endpoint();
        let stack = Stack::new_table(
            &table_name(),
            |c| {
                c.dynamodb_endpoint = Some(endpoint);
                adjust(c);
            },
            app,
        )
        .await;
        (proxy, stack)
    }

    async fn new_table(table: &str, adjust: impl FnOnce(&mut Config), app: A) -> Stack<A> {
        let stack = Stack::on_table_with(table, adjust, app).await;
        stack
            .gateway
            .store
            .ensure_table()
            .await
            .expect("create the test table");
        stack
    }

    async fn on_table_with(table: &str, adjust: impl FnOnce(&mut Config), app: A) -> Stack<A> {
        let sink = PushSink::start().await;
        let mut config = Config::new(table);
        config.dynamodb_endpoint = Some(dynamodb::endpoint().to_owned());
        config.management_endpoint = Some(sink.endpoint().to_owned());
        adjust(&mut config);
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
            .load()
            .await;
        Stack {
            gateway: shared::lambda::init::gateway(config, &sdk),
            app,
            sink,
            requests: AtomicUsize::new(0),
            authorized: Mutex::default(),
        }
    }

    /// The event, carrying the authorizer's context of its connection when it had one.
    fn lambda_event(
        &self,
        mut payload: ApiGatewayWebsocketProxyRequest,
    ) -> LambdaEvent<ApiGatewayWebsocketProxyRequest> {
        let id = payload
            .request_context
            .connection_id
            .clone()
            .unwrap_or_default();
        if let Some(context) = self.authorized().get(&id) {
            payload.request_context.authorizer.fields = context.clone();
        }
        LambdaEvent::new(payload, Context::default())
    }

    fn authorized(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Value>>> {
        self.authorized.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the `$connect` authorizer as API Gateway does: `Ok` with what later events carry as
    /// `requestContext.authorizer`, or the status API Gateway answers the handshake with.
    pub async fn authorize(
        &self,
        connection_id: &str,
        query: &[(&str, &str)],
    ) -> Result<HashMap<String, Value>, i64> {
        let request = events::authorizer_request(connection_id, &self.request_id(), query);
        let event = LambdaEvent::new(request, Context::default());
        match shared::lambda::connect::authorize(&self.gateway, event, connection_id.to_owned())
            .await
        {
            // An explicit Deny is API Gateway's 403.
            Ok(answer) if answer["policyDocument"]["Statement"][0]["Effect"] == "Deny" => Err(403),
            Ok(answer) => {
                assert_eq!(answer["policyDocument"]["Statement"][0]["Effect"], "Allow");
                let mut context: HashMap<String, Value> = answer["context"]
                    .as_object()
                    .expect("a context")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                context.insert("principalId".into(), answer["principalId"].clone());
                Ok(context)
            }
            // API Gateway answers an authorizer's `Unauthorized` with 401, any other failure 500.
            Err(shared::Error::Unauthorized) => Err(401),
            Err(_) => Err(500),
        }
    }

    /// `$connect` as a handshake reaches it: the authorizer first (a refusal is the status
    /// API Gateway answers, and `$connect` never runs), then the `$connect` event.
    pub async fn connect(&self, connection_id: &str, query: &[(&str, &str)]) -> i64 {
        match self.authorize(connection_id, query).await {
            Ok(context) => {
                self.authorized().insert(connection_id.to_owned(), context);
            }
            Err(status) => return status,
        }
        self.connect_without_authorizer(connection_id, query).await
    }

    fn request_id(&self) -> String {
        format!("req-{}", self.requests.fetch_add(1, Ordering::Relaxed))
    }

    /// Writes an item straight into the table: what a failure, a race or the TTL leaves behind.
    /// A fan-out job of `frame` for `to` (each named by the set at its index in `sets`), pushed
    /// through this stack's endpoint, due a minute from now.
    pub fn job(&self, id: &str, frame: &str, sets: Vec<Set>, to: &[(&str, usize)]) -> Job {
        Job {
            id: id.to_owned(),
            endpoint: self
                .gateway
                .config
                .management_endpoint
                .clone()
                .expect("the stack's push endpoint"),
            frame: frame.to_owned(),
            sets,
            to: to
                .iter()
                .map(|(id, set)| ((*id).to_owned(), Some(*set)))
                .collect(),
            deadline: now_millis() + 60_000,
        }
    }

    pub async fn put_item(&self, item: Item) {
        self.gateway
            .store
            .client()
            .put_item()
            .table_name(self.gateway.store.table())
            .set_item(Some(item))
            .send()
            .await
            .expect("write an item");
    }

    /// `$connect` with this query string and no authorizer in front (a stack deployed without
    /// one); the status the function answered.
    pub async fn connect_without_authorizer(
        &self,
        connection_id: &str,
        query: &[(&str, &str)],
    ) -> i64 {
        let event = self.lambda_event(events::connect(connection_id, &self.request_id(), query));
        shared::lambda::connect::handle(&self.gateway, &self.app, event)
            .await
            .expect("connect answers")
            .status_code
    }

    /// A frame from `connection_id`.
    pub async fn send(&self, connection_id: &str, body: &str) {
        let event = self.lambda_event(events::message(connection_id, &self.request_id(), body));
        let response = shared::lambda::message::handle(&self.gateway, &self.app, event)
            .await
            .expect("message answers");
        assert_eq!(response.status_code, 200);
    }

    /// `$disconnect`; the status the function answered.
    pub async fn disconnect(&self, connection_id: &str) -> i64 {
        let event = self.lambda_event(events::disconnect(connection_id, &self.request_id()));
        shared::lambda::disconnect::handle(&self.gateway, &self.app, event)
            .await
            .expect("disconnect answers")
            .status_code
    }

    /// The frames pushed to `connection_id` since the last look.
    pub fn received(&self, connection_id: &str) -> Vec<String> {
        self.sink.take(connection_id)
    }

    /// The one frame pushed to `connection_id` since the last look, as JSON.
    pub fn received_json(&self, connection_id: &str) -> serde_json::Value {
        let frames = self.received(connection_id);
        assert_eq!(
            frames.len(),
            1,
            "expected one frame for {connection_id}, got {frames:?}"
        );
        serde_json::from_str(&frames[0])
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", frames[0]))
    }

    /// Every item in the table (a Scan: for tests only, the service never scans).
    pub async fn items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .gateway
                .store
                .client()
                .scan()
                .table_name(self.gateway.store.table())
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan the test table");
            items.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                items.sort_by_key(|item| {
                    (
                        s(item, "pk").map(str::to_owned),
                        s(item, "sk").map(str::to_owned),
                    )
                });
                return items;
            }
        }
    }

    /// The items of one connection's partition and every set partition naming it.
    /// Every item but the rate limit's counts (`sk` `rate#…`), which every frame writes.
    pub async fn items_but_counts(&self) -> Vec<Item> {
        self.items()
            .await
            .into_iter()
            .filter(|item| !crate::local_stack::is_rate_count(item))
            .collect()
    }

    pub async fn items_of(&self, connection_id: &str) -> Vec<Item> {
        self.items()
            .await
            .into_iter()
            .filter(|item| {
                item.get("connectionId")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(connection_id)
            })
            .collect()
    }
}

/// A table name no other stack of any test process uses.
fn table_name() -> String {
    format!(
        "connections-{}-{}",
        std::process::id(),
        TABLES.fetch_add(1, Ordering::Relaxed)
    )
}

/// A string attribute of an item.
pub fn s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}
