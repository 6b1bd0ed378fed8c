-- GET of the URL given on the wrk command line (headers from -H). Used for GET one connection,
-- the list page, and nginx's static copy of the GET-one body.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")
