//! What the SDK-backed stores share: the SDK's errors translated into [`StoreError`] once, here.

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use crate::ports::StoreError;

/// Any SDK failure: the table cannot be reached or refused the request.
pub(crate) fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

/// An item that does not (de)serialize as the domain type.
pub(crate) fn corrupt(e: serde_dynamo::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A value as an attribute.
pub(crate) fn av<T: Serialize + ?Sized>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(corrupt)
}

/// Sends a conditional `PutItem`: `Ok(false)` when its condition failed (someone else's write
/// won, which the callers expect), `Err` for anything else.
pub(crate) async fn put_if(request: PutItemFluentBuilder) -> Result<bool, StoreError> {
    match request.send().await {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e)) if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) => {
            Ok(false)
        }
        Err(e) => Err(unavailable(e)),
    }
}
