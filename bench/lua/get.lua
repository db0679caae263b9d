-- The ceiling: a plain GET of a fixed JSON body. No response() function,
-- so wrk skips parsing answers exactly as it does for the simplest load.
wrk.method = "GET"
wrk.path = "/"
