module github.com/wardenhq/warden/infra

go 1.26.8
