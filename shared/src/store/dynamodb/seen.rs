//! Signatures the server API has seen (`pk=seen#{hex}`, `sk=seen`, `expiresAt`): one conditional
//! PutItem per signed request, so that a request sent again within the signature's five minutes
//! is refused. The items outlive that window by as much again, then expire.

use aws_sdk_dynamodb::types::AttributeValue;

use super::write::request_error;
use super::{DynamoStore, TTL_ATTRIBUTE};
use crate::store::StoreError;

impl DynamoStore {
    pub(super) async fn remember_signature_in(
        &self,
        signature: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("seen#{signature}")))
            .item("sk", AttributeValue::S("seen".into()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires_at.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(request_error("PutItem", e)),
        }
    }
}
