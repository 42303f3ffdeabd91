module datajobs.local/pause

go 1.19
