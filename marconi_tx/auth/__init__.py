"""Who a request is: authentication strategies (``[auth] strategy``)."""
