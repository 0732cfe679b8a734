-- wrk script: GET each path of a file in turn (one path per line), e.g.
--   wrk -t1 -c64 -d30s -s wrk_paths.lua http://127.0.0.1:8080 -- paths.txt
local paths = {}
local counter = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  -- each wrk thread starts at a different place in the list
  counter = math.random(#paths)
end

function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end
