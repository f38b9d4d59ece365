wrk.method = "POST"
wrk.body = '{"name":"cello","tags":["a","b","c"],"count":42,"nested":{"ok":true}}'
wrk.headers["Content-Type"] = "application/json"
