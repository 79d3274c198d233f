-- wrk script: each request asks for a login decision at a host, as the post-login Action does,
-- for the owner, a granted user and a stranger in turn. Arguments: the Action's secret, the
-- redirect URI, the granted user.
local secret, uri, users, i = "", "", {}, 0

function init(args)
  secret, uri = args[1], args[2]
  users = { "auth0|owner", args[3], "auth0|stranger" }
end

function request()
  i = i % #users + 1
  return wrk.format("POST", "/v1/login-decisions", {
    ["Authorization"] = "Bearer " .. secret,
    ["Content-Type"] = "application/json",
  }, '{"user_id":"' .. users[i] .. '","email":null,"email_verified":false,"redirect_uri":"'
    .. uri .. '","client_id":"spa"}')
end
