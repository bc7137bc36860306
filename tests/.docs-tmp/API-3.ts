import { Ominipg, OminipgError, SyncError } from "/work/main/src/index.js";


const __remote = "postgres://postgres:64489d7242d92337ccece6deb18b855a@127.0.0.1:37369/t_333879befdc6c68c";
const __dir = (name: string) => "/tmp/ominipg-docs-KrvoRD" + "/" + name;


export {};
