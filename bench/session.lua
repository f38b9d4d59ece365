-- Keep the session cookie the server sets, so every request reads and writes a real session.
local cookie = nil
request = function()
  if cookie then
    return wrk.format("GET", nil, { ["Cookie"] = cookie })
  end
  return wrk.format("GET")
end
response = function(status, headers, body)
  local set = headers["Set-Cookie"]
  if set then
    cookie = string.match(set, "^([^;]+)")
  end
end
