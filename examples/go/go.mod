module example.com/kontur-gate-origin

go 1.19
