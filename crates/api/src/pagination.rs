//! Svix list pagination on the wire: `limit`, `iterator` (a leading `-` pages backwards) and `order` in the
//! query, and the `{data, iterator, prevIterator, done}` body. The store does the paging itself.

use hookrelay_store::{Order, Page, PageRequest};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::QueryParams;

/// Page size when the client gives none.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size a client may ask for.
pub const MAX_LIMIT: usize = 250;

/// Reads `limit`, `iterator` and `order` from the query; `default_order` applies when `order` is absent
/// (messages and attempts list newest first, other resources oldest first).
pub fn page_request(query: &QueryParams, default_order: Order) -> Result<PageRequest, ApiError> {
    let limit = match query.number("limit")? {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => n as usize,
        Some(n) => return Err(ApiError::query("limit", format!("must be between 1 and {MAX_LIMIT}, got {n}"))),
    };
    let order = match query.get("order") {
        None => default_order,
        Some("ascending") => Order::Ascending,
        Some("descending") => Order::Descending,
        Some(other) => {
            return Err(ApiError::query("order", format!("must be `ascending` or `descending`, not `{other}`")));
        }
    };
    let (cursor, backwards) = match query.get("iterator") {
        None => (None, false),
        Some(iterator) => match iterator.strip_prefix('-') {
            Some("") => (None, false),
            Some(before) => (Some(before.to_owned()), true),
            None => (Some(iterator.to_owned()), false),
        },
    };
    Ok(PageRequest { limit, cursor, backwards, order })
}

/// A list response. `iterator` and `prevIterator` are always present (the SDKs require the key, even null).
#[derive(Debug, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListOut<T> {
    pub data: Vec<T>,
    /// The cursor of the next page (the last item's id); `null` when the page is empty and had no cursor.
    #[schema(required = true)]
    pub iterator: Option<String>,
    /// The cursor of the previous page: `-` and the first item's id.
    #[schema(required = true)]
    pub prev_iterator: Option<String>,
    /// Whether this is the last page.
    pub done: bool,
}

impl<T> ListOut<T> {
    /// Builds the response from a store page: `cursor` gives an item's cursor (its id, or an event type's name)
    /// and `to_wire` converts it. An empty page repeats the request's cursor, so a client polling for new
    /// items keeps its place.
    pub fn from_page<D>(
        page: Page<D>,
        request: &PageRequest,
        cursor: impl Fn(&D) -> String,
        to_wire: impl FnMut(D) -> Result<T, ApiError>,
    ) -> Result<Self, ApiError> {
        let first = page.items.first().map(&cursor).or_else(|| request.cursor.clone());
        let last = page.items.last().map(&cursor).or_else(|| request.cursor.clone());
        let data = page.items.into_iter().map(to_wire).collect::<Result<Vec<T>, ApiError>>()?;
        Ok(Self { data, iterator: last, prev_iterator: first.map(|id| format!("-{id}")), done: page.done })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> QueryParams {
        QueryParams::from_uri(&format!("/x?{q}").parse().expect("test uri")).expect("parses")
    }

    fn check(q: &str, expected: Result<PageRequest, ()>) {
        let got = page_request(&query(q), Order::Ascending).map_err(|_| ());
        assert_eq!(got, expected, "query {q:?}");
    }

    fn request(limit: usize, cursor: Option<&str>, backwards: bool, order: Order) -> Result<PageRequest, ()> {
        Ok(PageRequest { limit, cursor: cursor.map(str::to_owned), backwards, order })
    }

    #[test]
    fn pagination_query() {
        check("", request(50, None, false, Order::Ascending));
        check("limit=1", request(1, None, false, Order::Ascending));
        check("limit=250", request(250, None, false, Order::Ascending));
        check("limit=0", Err(()));
        check("limit=251", Err(()));
        check("limit=-5", Err(()));
        check("limit=ten", Err(()));
        check("iterator=app_2", request(50, Some("app_2"), false, Order::Ascending));
        check("iterator=-app_2", request(50, Some("app_2"), true, Order::Ascending));
        check("iterator=-", request(50, None, false, Order::Ascending));
        check("iterator=", request(50, None, false, Order::Ascending));
        check("order=descending", request(50, None, false, Order::Descending));
        check("order=ascending&limit=3", request(3, None, false, Order::Ascending));
        check("order=sideways", Err(()));
    }

    #[test]
    fn default_order_applies_when_absent() {
        let got = page_request(&query("limit=2"), Order::Descending).ok();
        assert_eq!(got.map(|r| r.order), Some(Order::Descending));
    }

    fn list(items: &[&str], done: bool, cursor: Option<&str>) -> ListOut<String> {
        let page = Page { items: items.iter().map(|s| s.to_string()).collect(), done };
        let request =
            PageRequest { limit: 50, cursor: cursor.map(str::to_owned), backwards: false, order: Order::Ascending };
        ListOut::from_page(page, &request, |s: &String| s.clone(), Ok).expect("no conversion errors")
    }

    #[test]
    fn list_body() {
        let out = list(&["a", "b", "c"], false, None);
        assert_eq!(out.iterator.as_deref(), Some("c"));
        assert_eq!(out.prev_iterator.as_deref(), Some("-a"));
        assert!(!out.done);
        let out = list(&[], true, None);
        assert_eq!((out.iterator, out.prev_iterator, out.done), (None, None, true));
        let out = list(&[], true, Some("c"));
        assert_eq!((out.iterator.as_deref(), out.prev_iterator.as_deref()), (Some("c"), Some("-c")));
        let json = serde_json::to_value(list(&[], true, None)).expect("serializes");
        assert_eq!(json, serde_json::json!({"data": [], "iterator": null, "prevIterator": null, "done": true}));
    }
}
