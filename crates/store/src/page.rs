//! Cursor pagination as the Svix API does it: ids (or names) are cursors, a leading `-` pages backwards.

/// Sort order of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// One page of a list: at most `limit` items after (or, when `backwards`, before) `cursor`, in `order`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    /// The id (or name) of the last item of the previous page; exclusive.
    pub cursor: Option<String>,
    /// Page towards the start of the list (Svix's `prevIterator`, written `-<id>`).
    pub backwards: bool,
    pub order: Order,
}

impl PageRequest {
    pub fn first(limit: usize, order: Order) -> Self {
        Self { limit, cursor: None, backwards: false, order }
    }

    /// The order to scan the table in: the list order, or its reverse when paging backwards.
    pub fn scan_descending(&self) -> bool {
        (self.order == Order::Descending) != self.backwards
    }
}

/// One page of results, always in the list's order, and whether the list ends in the paging direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub done: bool,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched in scan order with `limit + 1` as the SQL limit: the extra row only
    /// tells whether more exist.
    pub fn from_scan(mut rows: Vec<T>, request: &PageRequest) -> Self {
        let done = rows.len() <= request.limit;
        rows.truncate(request.limit);
        if request.backwards {
            rows.reverse();
        }
        Self { items: rows, done }
    }
}
