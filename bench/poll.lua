-- wrk script: each request polls the grants of the next instance of a list, with its own key.
-- Arguments: a file of "<instance id> <key>" lines, and the revision the pollers know.
local ids, keys, i, known = {}, {}, 0, "0"

function init(args)
  for line in io.lines(args[1]) do
    local id, key = line:match("^(%S+) (%S+)$")
    ids[#ids + 1], keys[#keys + 1] = id, key
  end
  known = args[2]
  -- Each thread starts at its own place in the list.
  i = math.random(#ids)
end

function request()
  i = i % #ids + 1
  return wrk.format("GET", "/v1/instances/" .. ids[i] .. "/grants", {
    ["Authorization"] = "Bearer " .. keys[i],
    ["If-None-Match"] = '"' .. known .. '"',
  })
end
